"""`colorize PATH...` (the `run` command, the default one): pictures and folders -> colour copies."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from labcolor.commands._common import batch_size_option, device_option, err, progress_bar, require_positive
from labcolor.core.errors import ConfigError

_OUTPUT, _MODEL, _SPEED = "Output", "Model", "Speed"


def run_command(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Pictures and/or folders (walked recursively).", show_default=False, metavar="PATH"),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o",
            help="Output folder, mirroring the inputs' relative paths. Default: <folder>_colorized beside each "
            "input folder (for a file: beside the folder that holds it). Never inside an input folder.",
            rich_help_panel=_OUTPUT,
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", "-f",
            help="Output format (jpg, png, webp, tiff, bmp, ...). Default: the input's own format "
            "(PNG for formats OpenCV cannot write in colour). 16-bit stays 16-bit in png/tiff/ppm, else 8-bit.",
            rich_help_panel=_OUTPUT,
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Redo pictures whose output exists (default: skip them, so a re-run resumes).",
                           rich_help_panel=_OUTPUT)
    ] = False,
    model: Annotated[
        Path | None,
        typer.Option("--model", "-m", help="A .onnx model from `colorize export`. Default: the shipped model.",
                     rich_help_panel=_MODEL),
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(help="Largest working size in px (longer side) the network sees; the result keeps full "
                     "resolution. Default: the model's inference_size. Smaller pictures are not enlarged beyond "
                     "their own size, except up to the model's training crop size.", rich_help_panel=_MODEL),
    ] = None,
    saturation: Annotated[
        float | None,
        typer.Option(min=0.0, help="Colour strength: 0 gray, 1 the model's own colours, above 1 stronger (chroma "
                     "stops at the sRGB gamut, hues kept). Default: the strength the model was tuned for.",
                     rich_help_panel=_MODEL),
    ] = None,
    device: device_option(_SPEED) = "auto",  # type: ignore[valid-type]
    batch_size: batch_size_option(_SPEED) = None,  # type: ignore[valid-type]
    workers: Annotated[
        int | None, typer.Option(help="Pictures processed in parallel. Default: one per CPU core.",
                                    rich_help_panel=_SPEED)
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="onnxruntime threads per inference. Default: CPU cores / workers.",
                                    rich_help_panel=_SPEED)
    ] = None,
) -> None:
    """Colorize pictures: files and folders (recursive) -> colour copies at full resolution. The default command.

    [cyan]colorize photos/[/] writes photos_colorized/ beside photos/, mirroring sub-folders; [cyan]colorize ./train[/] reaches a folder named like a command. Gray, colour (taken as its lightness), alpha (kept), 16-bit, palette and EXIF-rotated pictures are read; folders are searched for known picture extensions, hidden files skipped.

    Each output is written atomically (temporary file, then rename); outputs that exist are skipped, so an interrupted run resumes where it stopped. Inputs are never modified. Bad files are reported with a reason and the run goes on; exit code 1 if any file failed, 2 for bad usage.
    """
    import cv2

    from labcolor.core.imageio import output_suffix
    from labcolor.runtime import Colorizer, Summary
    from labcolor.runtime.jobs import count_jobs

    require_positive((("--size", size), ("--batch-size", batch_size), ("--workers", workers)))
    if threads is not None and threads < 0:
        raise ConfigError(f"--threads must be 0 (onnxruntime's default) or more, got {threads}")
    # Per-file decode failures are reported in the summary; OpenCV's own stderr lines would only repeat them.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    if fmt is not None:
        output_suffix("", fmt)  # refuses an unknown format before any work
    total = count_jobs(paths, output, fmt)
    colorizer = Colorizer(model, device, size=size, threads=threads, batch_size=batch_size, saturation=saturation)
    if total == 0:
        err.print("no pictures found (folders are searched for known picture extensions)", highlight=False)
        return
    logging.getLogger("labcolor").info(
        "%d picture(s), model %s, %s, working size %d, batch %d, saturation %g",
        total, colorizer.model_path.name, colorizer.device, colorizer.size, colorizer.batch_size, colorizer.saturation,
    )

    summary = Summary()
    interrupted = False
    results = colorizer.colorize_folder(paths, output, overwrite=overwrite, format=fmt, workers=workers)
    with progress_bar(TextColumn("colorizing"), BarColumn(), MofNCompleteColumn(), _Rate(), TimeElapsedColumn(),
                      TimeRemainingColumn(), TextColumn("{task.fields[note]}"), terminal_only=True) as bar:
        task = bar.add_task("colorize", total=total, note="", done=0, started=None)
        try:
            for result in results:
                if result.status == "done" and summary.done == 0:
                    # Start the clock at the first finished picture, so start-up does not count.
                    bar.update(task, started=time.perf_counter() - result.seconds)
                summary.add(result)
                note = f"[yellow]{summary.skipped} skipped[/] " if summary.skipped else ""
                note += f"[red]{len(summary.failed)} failed[/]" if summary.failed else ""
                bar.update(task, advance=1, done=summary.done, note=note)
        except KeyboardInterrupt:
            interrupted = True  # still report what was done: a re-run resumes from there
        finally:
            results.close()  # lets pictures in flight finish their atomic write, starts no new one
    for source, reason in summary.failed:
        err.print(f"[red]failed[/] {source}: {reason}", highlight=False, soft_wrap=True)
    where = output if output is not None else ", ".join(sorted({str(_default_out(p)) for p in paths}))
    err.print(
        f"{'interrupted: ' if interrupted else ''}[green]{summary.done} done[/], {summary.skipped} skipped "
        f"(output exists), [{'red' if summary.failed else 'green'}]{len(summary.failed)} failed[/] -> {where}",
        highlight=False, soft_wrap=True,
    )
    if interrupted:
        raise typer.Exit(130)
    if summary.failed:
        raise typer.Exit(1)  # some inputs failed: not a usage error, the others are written


def _default_out(path: Path) -> Path:
    from labcolor.runtime.jobs import default_output_root

    return default_output_root(Path(path).resolve())


class _Rate(ProgressColumn):
    """Pictures actually colorized per second (skipped ones are free and would inflate it)."""

    def render(self, task: Any) -> Text:
        done, started = task.fields.get("done", 0), task.fields.get("started") or time.perf_counter()
        elapsed = time.perf_counter() - started
        return Text(f"{done / elapsed:5.1f} img/s" if done and elapsed > 0 else "  --- img/s", style="cyan")
