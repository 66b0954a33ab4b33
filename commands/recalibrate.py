"""`colorize recalibrate`: re-estimate a checkpoint's BatchNorm statistics with dropout off."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

from labcolor.commands._common import err, progress_bar
from labcolor.core.errors import ConfigError


def recalibrate_command(
    checkpoint: Annotated[
        Path, typer.Argument(help="A labcolor checkpoint.pt (or best.pt) written by `colorize train`.")
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Checkpoint to write. Default: <name>-recal.pt beside CHECKPOINT."),
    ] = None,
    passes: Annotated[int, typer.Option(min=1, help="Passes over the training pictures (random crops).")] = 2,
    batch_size: Annotated[int, typer.Option(min=1, help="Batch size of the passes.")] = 16,
    data: Annotated[
        Path | None,
        typer.Option(help="Where the run's training pictures are now. Default: the path recorded in the checkpoint."),
    ] = None,
) -> None:
    """Re-estimate the generator's BatchNorm statistics on its training pictures, dropout off.

    Training ends with running statistics averaged over its last few steps with dropout on; inference runs
    with dropout off. This replaces them by a plain average over PASSES epochs of training crops (weights
    unchanged) and records it in the checkpoint, so the exported model's metadata says so. Export the result
    with `colorize export`.
    """
    from labcolor.trainer.recalibrate import recalibrate_checkpoint

    if out is None:
        out = checkpoint.with_name(f"{checkpoint.stem}-recal.pt")
    if out.resolve() == checkpoint.resolve():
        raise ConfigError(f"{out}: would overwrite the input checkpoint; choose another --out")
    with progress_bar(TextColumn("recalibrating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as bar:
        task = bar.add_task("batches", total=None)
        record = recalibrate_checkpoint(
            checkpoint, out, passes=passes, batch_size=batch_size, data=data,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    err.print(f"wrote {out}: BatchNorm statistics from {record['images']} training crops ({passes} passes)",
              highlight=False)
