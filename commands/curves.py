"""`colorize curves`: plot training runs' losses, validation scores, learning rate and speed per epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from labcolor.commands._common import err


def curves_command(
    runs: Annotated[
        list[Path],
        typer.Argument(help="Run folders or their metrics.jsonl; several are overlaid.", metavar="RUN...",
                       show_default=False),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Plot file (.png, .svg or .pdf). Default: curves.png in the run folder "
                     "(for several runs: in the current folder)."),
    ] = None,
    title: Annotated[str | None, typer.Option(help="Figure title. Default: the run names.")] = None,
) -> None:
    """Plot a training run's G/D losses, validation L1 and PSNR, learning rate and throughput per epoch.

    Needs matplotlib: pip install 'labcolor[plot]'.
    """
    from labcolor.trainer.curves import metrics_path, plot_curves

    if out is None:
        out = metrics_path(runs[0]).parent / "curves.png" if len(runs) == 1 else Path("curves.png")
    written = plot_curves(runs, out, title=title)
    err.print(f"curves: {written}", highlight=False)
