"""`colorize PATH...` (the `run` command, the default one): pictures and folders -> colour copies."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from enum import Enum
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
from labcolor.core.header import DEFAULT_MAX_PIXELS
from labcolor.runtime.results import FileResult, Summary

_OUTPUT, _MODEL, _SPEED, _INPUT, _VIDEO = "Output", "Model", "Speed", "Input", "Video"


class Engine(str, Enum):
    local = "local"
    ray = "ray"


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
            "input folder (for a file: beside the folder that holds it). Never inside an input folder. For one "
            "video file, -o out.mp4 names the video to write.",
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
    engine: Annotated[
        Engine, typer.Option(help="local: worker threads on this machine. ray: Ray Data actors, one model session "
                             "each, one picture at a time (--workers actors; default one per CPU, or per GPU on "
                             "CUDA), on a local Ray instance or on the cluster at --address; the same output files. "
                             "Needs labcolor\\[ray].",
                             rich_help_panel=_SPEED)
    ] = Engine.local,
    address: Annotated[
        str | None, typer.Option(help="With --engine ray: the Ray cluster to join (e.g. auto, or HEAD:6379 after "
                                 "`ray start --head`); default: a local Ray instance for this run. On a cluster "
                                 "every node must see the inputs, the output folder and --model at the same paths "
                                 "(shared storage), and have labcolor installed.", rich_help_panel=_SPEED)
    ] = None,
    temporal: Annotated[
        float, typer.Option(min=0.0, max=0.99, help="Videos: how much each frame's colours are smoothed with the "
                            "previous ones (0 = off; reset at scene cuts; lightness is never touched).",
                            rich_help_panel=_VIDEO)
    ] = 0.5,
    codec: Annotated[
        str | None, typer.Option(help="Videos: encoder (libx264, libx265, libvpx-vp9, mpeg4, ...). Default: H.264, "
                                 "VP9 for .webm. Audio is copied, not re-encoded.", rich_help_panel=_VIDEO)
    ] = None,
    quality: Annotated[
        int | None, typer.Option(help="Videos: the encoder's constant quality (CRF; lower is better). Default: 18 "
                                 "for H.264, 31 for VP9.", rich_help_panel=_VIDEO)
    ] = None,
    max_megapixels: Annotated[
        float, typer.Option(help="Refuse pictures larger than this many megapixels, from their header, before "
                            "decoding (protects memory from decompression bombs; 0 = no limit).",
                            rich_help_panel=_INPUT)
    ] = DEFAULT_MAX_PIXELS / 1e6,
    log_every: Annotated[
        float, typer.Option(help="When stderr is not a terminal (cron, nohup, CI), a progress line every this "
                            "many seconds instead of a bar; -q turns them off.", rich_help_panel=_OUTPUT)
    ] = 10.0,
) -> None:
    """Colorize pictures and videos: files and folders (recursive) -> colour copies at full resolution. The default command.

    [cyan]colorize photos/[/] writes photos_colorized/ beside photos/, mirroring sub-folders; [cyan]colorize ./train[/] reaches a folder named like a command. Gray, colour (taken as its lightness), alpha (kept), 16-bit, palette and EXIF-rotated pictures are read; folders are searched for known picture extensions, hidden files skipped.

    Videos (mp4, mov, mkv, webm, avi; needs labcolor\\[video]) keep their resolution, frame rate, frame count and audio; their colours are smoothed over time (--temporal). [cyan]colorize film.mp4 -o film_colour.mp4[/] writes one video.

    Each output is written atomically (temporary file, then rename); outputs that exist are skipped, so an interrupted run resumes where it stopped. Inputs are never modified. Bad files are reported with a reason and the run goes on; exit code 1 if any file failed, 2 for bad usage.
    """
    import cv2

    from labcolor.core.imageio import output_suffix
    from labcolor.runtime import Colorizer

    require_positive((("--size", size), ("--batch-size", batch_size), ("--workers", workers)))
    if address is not None and engine != Engine.ray:
        raise ConfigError("--address is for --engine ray")
    if threads is not None and threads < 0:
        raise ConfigError(f"--threads must be 0 (onnxruntime's default) or more, got {threads}")
    if max_megapixels < 0 or log_every < 0:
        raise ConfigError("--max-megapixels and --log-every must be 0 or more")
    max_pixels = round(max_megapixels * 1e6) or None
    # Per-file decode failures are reported in the summary; OpenCV's own stderr lines would only repeat them.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    if fmt is not None:
        output_suffix("", fmt)  # refuses an unknown format before any work
    total, videos = _scan(paths, output, fmt)
    # With Ray the pictures run on the actors' devices; this one only checks the model, size and saturation
    # up front (a driver without a GPU can still send work to GPU nodes).
    colorizer = Colorizer(model, device if engine == Engine.local else "cpu", size=size, threads=threads,
                          batch_size=batch_size, saturation=saturation)
    if total == 0 and not videos:
        err.print("no pictures or videos found (folders are searched for known picture and video extensions)",
                  highlight=False)
        return
    summary = Summary()
    interrupted = False
    if total:
        interrupted = _run_pictures(colorizer, paths, output, summary, total=total, engine=engine, fmt=fmt,
                                    overwrite=overwrite, workers=workers, max_pixels=max_pixels, log_every=log_every,
                                    model=model, device=device, size=size, saturation=saturation, threads=threads,
                                    address=address)
    if videos and not interrupted:
        interrupted = _run_videos(colorizer, videos, summary, overwrite=overwrite, temporal=temporal, codec=codec,
                                  quality=quality, max_pixels=max_pixels)
    for source, reason in summary.notes:
        err.print(f"[yellow]note[/] {source}: {reason}", highlight=False, soft_wrap=True)
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


def _run_pictures(colorizer: Any, paths: list[Path], output: Path | None, summary: Summary, *, total: int,
                  engine: Engine, fmt: str | None, overwrite: bool, workers: int | None, max_pixels: int | None,
                  log_every: float, model: Path | None, device: str, size: int | None, saturation: float | None,
                  threads: int | None, address: str | None) -> bool:
    """The pictures of the run, through the local pipeline or Ray; results go into `summary`. True if interrupted."""
    if engine == Engine.local:
        logging.getLogger("labcolor").info(
            "%d picture(s), model %s, %s, working size %d, batch %d, saturation %g", total,
            colorizer.model_path.name, colorizer.device, colorizer.size, colorizer.batch_size, colorizer.saturation,
        )
        results: Any = colorizer.colorize_folder(paths, output, overwrite=overwrite, format=fmt, workers=workers,
                                                 max_pixels=max_pixels)
    else:
        from labcolor.runtime.ray_engine import colorize_folder_ray

        logging.getLogger("labcolor").info(
            "%d picture(s), model %s, engine ray (device %s), working size %d, saturation %g", total,
            colorizer.model_path.name, device, colorizer.size, colorizer.saturation,
        )
        _quiet_ray_console()
        results = colorize_folder_ray(model, paths, output, device=device, size=size, saturation=saturation,
                                      threads=threads, overwrite=overwrite, fmt=fmt, max_pixels=max_pixels,
                                      address=address, num_actors=workers)
    interrupted = False
    progress_log = ProgressLog(total, log_every) if not err.is_terminal else None
    with results, progress_bar(TextColumn("colorizing"), BarColumn(), MofNCompleteColumn(), _Rate(),
                               TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[note]}"),
                               terminal_only=True) as bar:
        task = bar.add_task("colorize", total=total, note="", done=0, started=None)

        def count(result: FileResult) -> None:
            if result.status == "done" and summary.done == 0:
                # Start the clock at the first finished picture, so start-up does not count.
                bar.update(task, started=time.perf_counter() - result.seconds)
            summary.add(result)
            note = f"[yellow]{summary.skipped} skipped[/] " if summary.skipped else ""
            note += f"[red]{len(summary.failed)} failed[/]" if summary.failed else ""
            bar.update(task, advance=1, done=summary.done, note=note)
            if progress_log is not None:
                progress_log.update(summary, result.seconds if result.status == "done" else 0.0)

        try:
            for result in results:
                count(result)
        except KeyboardInterrupt:
            interrupted = True  # still report what was done: a re-run resumes from there
            results.stop()  # no new picture; those in flight finish their atomic write and are counted
            with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl+C stops waiting for them
                for result in results:
                    count(result)
    return interrupted


def _single_video(paths: list[Path], output: Path | None) -> bool:
    """`colorize film.mp4 -o out.mp4`: one video file in, -o naming the video file to write (not a folder)."""
    from labcolor.core.imageio import VIDEO_SUFFIXES

    return (len(paths) == 1 and paths[0].suffix.lower() in VIDEO_SUFFIXES and output is not None
            and output.suffix.lower() in VIDEO_SUFFIXES and not output.is_dir())


def _scan(paths: list[Path], output: Path | None, fmt: str | None) -> tuple[int, list[Any]]:
    """(number of picture jobs, the video jobs) in one walk of the inputs: pictures for the progress bar's total
    (the pipeline lists them again lazily as it goes), videos mirrored like pictures, or the one -o file."""
    from labcolor.runtime.jobs import Job, check_inputs, is_video_job, iter_jobs

    if _single_video(paths, output):
        assert output is not None
        (source,) = check_inputs(paths, None)
        return 0, [Job(source, Path(output).resolve())]
    pictures, videos = 0, []
    for job in iter_jobs(paths, output, fmt, kind="all"):
        if is_video_job(job):
            videos.append(job)
        else:
            pictures += 1
    return pictures, videos


def _run_videos(colorizer: Any, jobs: list[Any], summary: Summary, *, overwrite: bool, temporal: float,
                codec: str | None, quality: int | None, max_pixels: int | None) -> bool:
    """Videos one after another (each already keeps the cores busy: decoder, network, encoder thread); a bar of
    frames in a terminal, a log line per video otherwise. True if interrupted (the video's output is not left
    half-written: runtime.video writes it under a temporary name)."""
    from labcolor.runtime import video

    log = logging.getLogger("labcolor")
    log.info("%d video(s), temporal smoothing %g", len(jobs), temporal)
    with progress_bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
                      TextColumn("{task.fields[fps]}"), TimeRemainingColumn(), terminal_only=True) as bar:
        for job in jobs:
            task = bar.add_task(job.source.name, total=None, fps="")

            def progress(p: Any, task: Any = task) -> None:
                bar.update(task, completed=p.frames, total=p.total, fps=f"{p.fps:.1f} frames/s")

            if not video.available():
                summary.add(FileResult(job.source, job.target, "failed", video.AV_MISSING))
                continue
            try:
                result = video.colorize_video_job(colorizer, job, overwrite=overwrite, temporal=temporal,
                                                  codec=codec, quality=quality, max_pixels=max_pixels,
                                                  progress=progress)
            except KeyboardInterrupt:
                return True
            finally:
                bar.remove_task(task)
            summary.add(result)
            if result.status == "done":
                log.info("%s: done in %.1f s", job.source.name, result.seconds)
    return False


def _quiet_ray_console() -> None:
    """Ray Data prints each run's plan and notices on the console, through the bar; the command's own bar and
    summary say what matters. Ray's log files keep everything, and -v leaves the console as Ray sets it."""
    if logging.getLogger("labcolor").isEnabledFor(logging.DEBUG):
        return
    try:
        import ray.data  # noqa: F401 - sets up its loggers on import
    except ImportError:
        return  # the engine says what to install
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setLevel(logging.CRITICAL)  # its errors reach the command as exceptions, said in one line


def _default_out(path: Path) -> Path:
    from labcolor.runtime.jobs import default_output_root

    return default_output_root(Path(path).resolve())


class ProgressLog:
    """Progress as plain log lines, for runs whose stderr is a file or a pipe (no bar there): every
    `every` seconds, "colorizing: 120/5000, 3.1 img/s, about 26 min left". INFO level, so -q hides them."""

    def __init__(self, total: int, every: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.every, self.clock = total, every, clock
        self.started: float | None = None
        self.last = clock()

    def update(self, summary: Summary, seconds: float = 0.0) -> None:
        now = self.clock()
        if self.started is None and summary.done:
            self.started = now - seconds  # the clock starts with the first finished picture, as the bar's
        if now - self.last < self.every:
            return  # the summary after the run gives the final counts
        self.last = now
        line = f"colorizing: {summary.total}/{self.total}"
        elapsed = now - self.started if self.started is not None else 0.0
        if summary.done and elapsed > 0:
            rate = summary.done / elapsed
            left = (self.total - summary.total) / rate
            line += f", {rate:.1f} img/s, about {_duration(left)} left"
        if summary.skipped:
            line += f", {summary.skipped} skipped"
        if summary.failed:
            line += f", {len(summary.failed)} failed"
        logging.getLogger("labcolor").info(line)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class _Rate(ProgressColumn):
    """Pictures actually colorized per second (skipped ones are free and would inflate it)."""

    def render(self, task: Any) -> Text:
        done, started = task.fields.get("done", 0), task.fields.get("started") or time.perf_counter()
        elapsed = time.perf_counter() - started
        return Text(f"{done / elapsed:5.1f} img/s" if done and elapsed > 0 else "  --- img/s", style="cyan")
