"""`colorize train`: its options are generated from TrainConfig, whose fields carry their help texts.

Adding a training option is one edit, in labcolor.trainer.config: the field's name, type, default,
help text and panel become `--<name>` here (Literal types become validated choices, bools get a
`--no-` form, `str | None` an optional value). Only what the command line adds itself is written
out below: `--out` derived from --data and --size, and `--resume`.
"""

from __future__ import annotations

import inspect
import time
import typing
from dataclasses import Field, fields
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from labcolor.commands._common import err, interrupted, progress_bar
from labcolor.trainer.config import OUTPUT, RESUMABLE_FIELDS, TrainConfig
from labcolor.trainer.runfiles import METRICS_NAME, SAMPLES_DIR


def train_command(ctx: typer.Context, resume: Path | None = None, **options: Any) -> None:
    """Train a colorization GAN (or, with --adv-weight 0, the L1-only U-Net) in Lab space.

    Defaults are the classic CIFAR-10 setup: 32x32, U-Net generator, global discriminator, vanilla GAN loss with real label 0.9, lambda 100, Adam(2e-4, beta1 0.5), batch 128.

    Each epoch writes checkpoint.pt, a sample grid in samples/ and a line in metrics.jsonl.
    """
    from labcolor.trainer.checkpoint import load_checkpoint
    from labcolor.trainer.train import merge_resume_config, train

    options = {name: str(value) if isinstance(value, Path) else value for name, value in options.items()}
    if resume is not None:
        # Only options given on the command line (not their defaults) may override the checkpoint.
        # Typer vendors its own click, so the source enum is compared by name.
        given = {name: value for name, value in options.items() if ctx.get_parameter_source(name).name != "DEFAULT"}
        cfg = merge_resume_config(TrainConfig.from_dict(load_checkpoint(resume)["config"]), given)
    else:
        if options["out"] is None:
            options["out"] = str(default_run_folder(Path(options["data"]), options["size"]))
        cfg = TrainConfig(**options)
    with progress_bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), TextColumn("{task.fields[stats]}")) as bar:
        try:
            result = train(cfg, resume=resume, progress=_TrainBar(bar))
        except KeyboardInterrupt:
            raise interrupted("the last completed epoch is in checkpoint.pt (resume with --resume)") from None
    err.print(f"checkpoint: {result.checkpoint}\nmetrics:    {result.out / METRICS_NAME}\nsamples:    "
              f"{result.out / SAMPLES_DIR}", highlight=False)
    if result.best is not None:
        err.print(f"best:       {result.best} (epoch {result.best_epoch}, lowest validation ΔE00)", highlight=False)


def default_run_folder(data: Path, size: int) -> Path:
    """--out when not given: runs/<name of --data>-<size>, so runs on different data or sizes do not collide."""
    return Path("runs") / f"{data.stem or 'data'}-{size}"


def _config_option(field: Field[Any], annotation: Any) -> inspect.Parameter:
    """A TrainConfig field -> the keyword parameter Typer turns into `--<name>` (see the module docstring)."""
    default, flags, help_text = field.default, (), field.metadata["help"]
    if field.metadata["path"]:
        optional = type(None) in typing.get_args(annotation)
        annotation = Path | None if optional else Path
        default = None if default is None else Path(default)
    if field.name == "out":  # derived from --data and --size when not given, hence no fixed default
        annotation, default, flags = Path | None, None, ("--out", "-o")
        help_text += " Default: runs/<name of --data>-<size>."
    option = typer.Option(*flags, help=help_text, rich_help_panel=field.metadata["panel"])
    return inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[annotation, option])


def _signature() -> inspect.Signature:
    """train_command's parameters as Typer sees them: the context, every config field, then --resume."""
    hints = typing.get_type_hints(TrainConfig)  # resolves the string annotations of `from __future__`
    resumable = ", ".join(f"--{f.name.replace('_', '-')}" for f in fields(TrainConfig) if f.name in RESUMABLE_FIELDS)
    resume = typer.Option(
        help=f"Continue a run from its checkpoint.pt (same config; only {resumable} may change).",
        rich_help_panel=OUTPUT,
    )
    return inspect.Signature([
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        *(_config_option(f, hints[f.name]) for f in fields(TrainConfig)),
        inspect.Parameter("resume", inspect.Parameter.KEYWORD_ONLY, default=None,
                          annotation=Annotated[Path | None, resume]),
    ], return_annotation=None)


train_command.__signature__ = _signature()  # type: ignore[attr-defined] - Typer reads the options from it


class _TrainBar:
    """Rich progress bar fed by the training loop (trainer.train.TrainProgress)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: Any = None
        self.images = 0
        self.started = 0.0

    def epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(f"epoch {epoch}/{epochs}", total=batches, stats="")
        self.images, self.started = 0, time.perf_counter()

    def step(self, images: int, losses: dict[str, float]) -> None:
        self.images += images
        rate = self.images / max(time.perf_counter() - self.started, 1e-9)
        stats = "  ".join(f"{k} {v:.3f}" for k, v in losses.items()) + f"  {rate:.0f} img/s"
        self.progress.update(self.task, advance=1, stats=stats)

    def epoch_end(self, metrics: dict[str, Any]) -> None:
        self.progress.console.print(
            f"epoch {metrics['epoch']}: val L1(ab) {metrics['val_l1_ab']:.2f}  PSNR {metrics['val_psnr']:.2f} dB  "
            f"ΔE00 {metrics['val_de00']:.2f}  colourfulness {metrics['val_colourfulness']:.2f}  "
            f"{metrics['images_per_s']:.0f} img/s",
            highlight=False,
        )
