"""`colorize eval`: score models against colour ground truth; a table, metrics.json, report.html, grid.png."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from labcolor.commands._common import batch_size_option, device_option, err, progress_bar, require_positive
from labcolor.core.errors import ConfigError

_DATA, _MODELS, _OUTPUT = "Data", "Models", "Output"


def parse_strengths(text: str) -> list[float]:
    """'0,0.5,1' -> [0.0, 0.5, 1.0]; a ConfigError names what could not be read."""
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--saturation: expected numbers separated by commas, got {text!r}") from None


def eval_command(
    models: Annotated[
        list[Path], typer.Argument(help="One or more .onnx models from `colorize export`.", metavar="MODEL.onnx...")
    ],
    data: Annotated[
        Path,
        typer.Option("--data", "-d", help="Colour ground truth: a folder of pictures (recursive), a picture, "
                     "or CIFAR-10 (archive or cifar-10-batches-py folder; its test batch is used).",
                     rich_help_panel=_DATA, show_default=False),
    ],
    limit: Annotated[
        int | None, typer.Option(help="Use only the first N pictures.", rich_help_panel=_DATA)
    ] = None,
    resize: Annotated[
        int | None,
        typer.Option(help="Shrink the ground truth to this longer side (px) first, for speed.",
                     rich_help_panel=_DATA),
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(help="Largest working size (px, longer side) the network sees, as `colorize --size`. Default: "
                     "the model's inference_size. Pictures are colorized exactly as `colorize PATH` does.",
                     rich_help_panel=_MODELS),
    ] = None,
    saturation: Annotated[
        str | None,
        typer.Option(help="Colour strengths to score, comma-separated (e.g. 0,0.5,1,1.5): one row per model and "
                     "strength, from one prediction. Default: each model's own (its metadata).",
                     rich_help_panel=_MODELS),
    ] = None,
    device: device_option(_MODELS) = "auto",  # type: ignore[valid-type]
    batch_size: batch_size_option(_MODELS) = None,  # type: ignore[valid-type]
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for metrics.json, report.html and grid.png.",
                           rich_help_panel=_OUTPUT)
    ] = Path("eval"),
    rank_by: Annotated[
        str, typer.Option(help="Per-picture metric (of the first model) ordering the report's best/worst groups: "
                          "psnr, ssim, ciede2000, colourfulness_ratio, accuracy or auc.", rich_help_panel=_OUTPUT)
    ] = "ciede2000",
    report_images: Annotated[
        int, typer.Option(help="Pictures in report.html (half best, half worst when there are more).",
                          rich_help_panel=_OUTPUT)
    ] = 24,
    grid_images: Annotated[
        int, typer.Option(help="Pictures (rows) in grid.png, spread from best to worst.", rich_help_panel=_OUTPUT)
    ] = 8,
) -> None:
    """Score models against colour ground truth: PSNR, SSIM, CIEDE2000, colourfulness ratio, 2% accuracy, AuC.

    Each ground-truth picture becomes a grayscale input (its Lab L, a = b = 0), is colorized by every model, and
    scored; the grayscale input itself is the baseline row. Prints a table and writes metrics.json (every picture's
    scores), report.html (self-contained, sortable) and grid.png into --out.
    """
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from labcolor.evaluation.evaluate import evaluate
    from labcolor.evaluation.report import SUMMARY_HEADERS, summary_rows, write_outputs

    require_positive((("--limit", limit), ("--size", size), ("--batch-size", batch_size),
                      ("--report-images", report_images), ("--grid-images", grid_images)))
    with progress_bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), terminal_only=True) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        result = evaluate(models, data, device=device, size=size, batch_size=batch_size, limit=limit,
                          saturations=parse_strengths(saturation) if saturation else None,
                          resize=resize, rank_by=rank_by, report_images=report_images,
                          grid_images=grid_images, progress=progress)
        paths = write_outputs(result, out)
    d = result.data
    table = Table(title=f"{d.source}: {len(d.pictures)} pictures ({d.kind})", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for i, header in enumerate(SUMMARY_HEADERS):
        table.add_column(header, justify="left" if i == 0 else "right", no_wrap=True)
    for row in summary_rows(result):
        table.add_row(*(f"[bold green]{escape(text)}[/]" if best else escape(text) for text, best in row))
    Console().print(table)  # the result: stdout
    for name, reason in d.skipped:
        err.print(f"[yellow]skipped[/] {name}: {reason}", highlight=False, soft_wrap=True)
    err.print(f"metrics: {paths['json']}\nreport:  {paths['html']}\ngrid:    {paths['grid']}", highlight=False)
