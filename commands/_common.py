"""What the commands share: the stderr console, logging, progress bars, option checks, Ctrl+C."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import Progress, ProgressColumn

from labcolor.core.errors import ConfigError

# Messages, progress and logs go to stderr, so stdout carries only results (tables, JSON).
err = Console(stderr=True)


def setup_logging(*, verbose: bool, quiet: bool) -> None:
    """Route library logs through rich on stderr: DEBUG with --verbose, WARNING with --quiet, else INFO."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=err, show_path=False)], force=True
    )


def progress_bar(*columns: str | ProgressColumn, terminal_only: bool = False) -> Progress:
    """A transient progress bar on stderr; `terminal_only` hides it when stderr is a file or pipe."""
    return Progress(*columns, console=err, transient=True, disable=terminal_only and not err.is_terminal)


def require_positive(options: Iterable[tuple[str, int | None]]) -> None:
    """Refuse (name, value) options that are given but not positive; None means "not given"."""
    for name, value in options:
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be a positive number, got {value}")


def interrupted(then: str = "") -> typer.Exit:
    """Ctrl+C: say so, and what the user can do now; exit code 130, as shells give for SIGINT."""
    err.print(f"interrupted; {then}" if then else "interrupted", highlight=False)
    return typer.Exit(130)


def device_option(panel: str) -> Any:
    """`--device`, as every command that runs a model declares it (its help panel differs)."""
    return Annotated[str, typer.Option(help="auto (CUDA if it really loads, else CPU), cpu, cuda or cuda:N.",
                                       rich_help_panel=panel)]


def batch_size_option(panel: str) -> Any:
    """`--batch-size` of the commands that run a model."""
    return Annotated[int | None, typer.Option(help="Pictures per inference. Default: 8 on CUDA, 1 on CPU.",
                                              rich_help_panel=panel)]
