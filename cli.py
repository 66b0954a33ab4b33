"""`colorize`: the command-line edge of labcolor.

Commands stay thin: they parse options, call library code, and are the only place where
library exceptions become messages and exit codes. Heavy imports (torch, onnxruntime)
happen inside the commands, so `colorize --help` starts fast and never imports torch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from labcolor.trainer.config import ConfigError, TrainConfig

app = typer.Typer(
    name="colorize",
    help="Colorize grayscale photos with a Lab-space GAN; train, export, inspect and evaluate models.\n\n"
    "[b]Main job:[/] [cyan]colorize PATH...[/] colorizes pictures and folders (recursive) with the model shipped "
    "in the package, writing [cyan]<folder>_colorized/[/]. See [cyan]colorize run --help[/].",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
_DEFAULTS = TrainConfig()
_CONFIG_FIELDS = frozenset(f.name for f in fields(TrainConfig))

# Exit codes: 1 = some inputs failed, 2 = bad usage or input (click's own convention).
EXIT_BAD_INPUT = 2


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only log warnings and errors.")] = False,
) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=err, show_path=False)], force=True
    )


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


_DATA, _GEN, _DISC, _LOSS, _OPT, _OUT = "Data", "Generator (U-Net)", "Discriminator", "Losses", "Optimisation", "Output"


@app.command("train", no_args_is_help=False)
def train_command(
    ctx: typer.Context,
    data: Annotated[
        Path,
        typer.Option(
            help="Training pictures: a folder of colour photos (recursive), cifar-10-python.tar.gz, "
            "or the extracted cifar-10-batches-py folder.",
            rich_help_panel=_DATA,
        ),
    ] = Path(_DEFAULTS.data),
    val: Annotated[
        Optional[Path],
        typer.Option(
            help="Validation photos. Default: the CIFAR-10 test batch, or every 20th picture held out of --data.",
            rich_help_panel=_DATA,
        ),
    ] = None,
    dataset: Annotated[
        str, typer.Option(help="auto, cifar10 or folder (auto: CIFAR-10 if --data looks like it).", rich_help_panel=_DATA)
    ] = _DEFAULTS.dataset,
    download: Annotated[
        bool, typer.Option(help="Download CIFAR-10 into --data (MD5-verified) if missing.", rich_help_panel=_DATA)
    ] = _DEFAULTS.download,
    size: Annotated[
        int, typer.Option(help="Training crop size in px; a multiple of 2**depth.", rich_help_panel=_DATA)
    ] = _DEFAULTS.size,
    crop_scale: Annotated[
        float, typer.Option(help="Random resized crops keep at least this fraction of the area.", rich_help_panel=_DATA)
    ] = _DEFAULTS.crop_scale,
    flip: Annotated[bool, typer.Option(help="Random horizontal flips.", rich_help_panel=_DATA)] = _DEFAULTS.flip,
    val_fraction: Annotated[
        float, typer.Option(help="Fraction held out of a folder when --val is not given.", rich_help_panel=_DATA)
    ] = _DEFAULTS.val_fraction,
    val_max_images: Annotated[
        int, typer.Option(help="Validation metrics use at most this many images.", rich_help_panel=_DATA)
    ] = _DEFAULTS.val_max_images,
    cache_mb: Annotated[
        int, typer.Option(help="Keep decoded pictures in RAM when they fit in this many MB.", rich_help_panel=_DATA)
    ] = _DEFAULTS.cache_mb,
    workers: Annotated[
        int, typer.Option(help="DataLoader worker processes (0: main process).", rich_help_panel=_DATA)
    ] = _DEFAULTS.workers,
    depth: Annotated[
        int, typer.Option(help="U-Net levels (32 px -> 5 reaches 1x1; pix2pix uses 8 at 256 px).", rich_help_panel=_GEN)
    ] = _DEFAULTS.depth,
    base_channels: Annotated[
        int, typer.Option(help="Channels of the first level; doubles per level.", rich_help_panel=_GEN)
    ] = _DEFAULTS.base_channels,
    max_channels: Annotated[int, typer.Option(help="Channel cap of deep levels.", rich_help_panel=_GEN)] = (
        _DEFAULTS.max_channels
    ),
    g_norm: Annotated[str, typer.Option(help="Generator norm: batch, instance or none.", rich_help_panel=_GEN)] = (
        _DEFAULTS.g_norm
    ),
    dropout: Annotated[
        float, typer.Option(help="pix2pix dropout near the bottleneck (0 disables).", rich_help_panel=_GEN)
    ] = _DEFAULTS.dropout,
    noise_channels: Annotated[
        int, typer.Option(help="Explicit noise input z: N(0,1) maps fed with L (0 disables).", rich_help_panel=_GEN)
    ] = _DEFAULTS.noise_channels,
    d_kind: Annotated[
        str, typer.Option(help="global (one logit per image) or patch (PatchGAN).", rich_help_panel=_DISC)
    ] = _DEFAULTS.d_kind,
    d_norm: Annotated[
        str, typer.Option(help="batch, instance, spectral or none.", rich_help_panel=_DISC)
    ] = _DEFAULTS.d_norm,
    d_base_channels: Annotated[int, typer.Option(help="D's first-layer width.", rich_help_panel=_DISC)] = (
        _DEFAULTS.d_base_channels
    ),
    d_layers: Annotated[int, typer.Option(help="PatchGAN layers (3: 70x70 patches).", rich_help_panel=_DISC)] = (
        _DEFAULTS.d_layers
    ),
    d_conditional: Annotated[
        bool, typer.Option(help="D sees L and ab (pix2pix) rather than ab alone.", rich_help_panel=_DISC)
    ] = _DEFAULTS.d_conditional,
    init_std: Annotated[
        Optional[float], typer.Option(help="N(0, std) weight init; omit for PyTorch's default.", rich_help_panel=_DISC)
    ] = _DEFAULTS.init_std,
    gan_loss: Annotated[str, typer.Option(help="vanilla (BCE), lsgan or hinge.", rich_help_panel=_LOSS)] = (
        _DEFAULTS.gan_loss
    ),
    adv_weight: Annotated[
        float, typer.Option(help="Adversarial weight; 0 trains the L1-only U-Net baseline.", rich_help_panel=_LOSS)
    ] = _DEFAULTS.adv_weight,
    l1_weight: Annotated[float, typer.Option(help="L1 weight (pix2pix lambda).", rich_help_panel=_LOSS)] = (
        _DEFAULTS.l1_weight
    ),
    real_label: Annotated[
        float, typer.Option(help="D's real target; 0.9 = one-sided label smoothing.", rich_help_panel=_LOSS)
    ] = _DEFAULTS.real_label,
    ema: Annotated[
        float, typer.Option(help="EMA decay of G's weights per step; validation and export use the average (0: off).",
                            rich_help_panel=_OPT)
    ] = _DEFAULTS.ema,
    epochs: Annotated[int, typer.Option(help="Epochs in total (also when resuming).", rich_help_panel=_OPT)] = (
        _DEFAULTS.epochs
    ),
    batch_size: Annotated[int, typer.Option(help="Images per step.", rich_help_panel=_OPT)] = _DEFAULTS.batch_size,
    lr_g: Annotated[float, typer.Option(help="Generator learning rate.", rich_help_panel=_OPT)] = _DEFAULTS.lr_g,
    lr_d: Annotated[float, typer.Option(help="Discriminator learning rate.", rich_help_panel=_OPT)] = _DEFAULTS.lr_d,
    beta1: Annotated[float, typer.Option(help="Adam beta1.", rich_help_panel=_OPT)] = _DEFAULTS.beta1,
    beta2: Annotated[float, typer.Option(help="Adam beta2.", rich_help_panel=_OPT)] = _DEFAULTS.beta2,
    lr_decay: Annotated[str, typer.Option(help="none, linear or step.", rich_help_panel=_OPT)] = _DEFAULTS.lr_decay,
    decay_start: Annotated[
        int, typer.Option(help="linear: epochs at full LR before decaying to 0.", rich_help_panel=_OPT)
    ] = _DEFAULTS.decay_start,
    decay_every: Annotated[int, typer.Option(help="step: epochs between LR drops.", rich_help_panel=_OPT)] = (
        _DEFAULTS.decay_every
    ),
    decay_gamma: Annotated[float, typer.Option(help="step: LR multiplier per drop.", rich_help_panel=_OPT)] = (
        _DEFAULTS.decay_gamma
    ),
    amp: Annotated[bool, typer.Option(help="Mixed precision (CUDA only).", rich_help_panel=_OPT)] = _DEFAULTS.amp,
    device: Annotated[
        str, typer.Option(help="auto (cuda > mps > cpu), or e.g. cpu, cuda, cuda:1.", rich_help_panel=_OPT)
    ] = _DEFAULTS.device,
    seed: Annotated[int, typer.Option(help="Seed of weights, order and augmentation.", rich_help_panel=_OPT)] = (
        _DEFAULTS.seed
    ),
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out", "-o", help="Run folder. Default: runs/<name of --data>-<size>.", rich_help_panel=_OUT
        ),
    ] = None,
    sample_count: Annotated[int, typer.Option(help="Pictures in each epoch's sample grid.", rich_help_panel=_OUT)] = (
        _DEFAULTS.sample_count
    ),
    resume: Annotated[
        Optional[Path],
        typer.Option(
            help="Continue a run from its checkpoint.pt (same config; only --epochs, --device, --workers, --amp, "
            "--out, --val-max-images, --cache-mb may change).",
            rich_help_panel=_OUT,
        ),
    ] = None,
) -> None:
    """Train a colorization GAN (or, with --adv-weight 0, the L1-only U-Net) in Lab space.

    Defaults are the classic CIFAR-10 setup: 32x32, U-Net generator, global discriminator, vanilla GAN loss with real label 0.9, lambda 100, Adam(2e-4, beta1 0.5), batch 128.

    Each epoch writes checkpoint.pt, a sample grid in samples/ and a line in metrics.jsonl.
    """
    from labcolor.trainer.checkpoint import CheckpointError, load_checkpoint
    from labcolor.trainer.cifar import CifarError
    from labcolor.trainer.data import DataError
    from labcolor.trainer.train import merge_resume_config, train

    # Options given on the command line (not their defaults): on --resume, only these may override
    # the checkpoint. Typer vendors its own click, so the source enum is compared by name.
    explicit = {
        name: value
        for name, value in ctx.params.items()
        if name in _CONFIG_FIELDS and ctx.get_parameter_source(name).name != "DEFAULT"
    }
    explicit = {k: str(v) if isinstance(v, Path) else v for k, v in explicit.items()}
    try:
        if resume is not None:
            saved = TrainConfig.from_dict(load_checkpoint(resume)["config"])
            cfg = merge_resume_config(saved, explicit)
        else:
            values = {k: str(v) if isinstance(v, Path) else v for k, v in ctx.params.items() if k in _CONFIG_FIELDS}
            values["out"] = str(out) if out is not None else str(Path("runs") / f"{Path(data).stem or 'data'}-{size}")
            cfg = TrainConfig(**values)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[stats]}"),
            console=err,
            transient=True,
        ) as bar:
            result = train(cfg, resume=resume, progress=_TrainBar(bar))
    except (ConfigError, DataError, CifarError, CheckpointError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        raise _fail("interrupted; the last completed epoch is in checkpoint.pt (resume with --resume)", 130) from None
    err.print(f"checkpoint: {result.checkpoint}\nmetrics:    {result.out / 'metrics.jsonl'}\nsamples:    "
              f"{result.out / 'samples'}", highlight=False)
    if result.best is not None:
        err.print(f"best:       {result.best} (epoch {result.best_epoch}, lowest validation ΔE00)", highlight=False)


@app.command("recalibrate")
def recalibrate_command(
    checkpoint: Annotated[Path, typer.Argument(help="A labcolor checkpoint.pt (or best.pt) written by `colorize train`.")],
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Checkpoint to write. Default: <name>-recal.pt beside CHECKPOINT."),
    ] = None,
    passes: Annotated[int, typer.Option(min=1, help="Passes over the training pictures (random crops).")] = 2,
    batch_size: Annotated[int, typer.Option(min=1, help="Batch size of the passes.")] = 16,
    data: Annotated[
        Optional[Path],
        typer.Option(help="Where the run's training pictures are now. Default: the path recorded in the checkpoint."),
    ] = None,
) -> None:
    """Re-estimate the generator's BatchNorm statistics on its training pictures, dropout off.

    Training ends with running statistics averaged over its last few steps with dropout on; inference runs
    with dropout off. This replaces them by a plain average over PASSES epochs of training crops (weights
    unchanged) and records it in the checkpoint, so the exported model's metadata says so. Export the result
    with `colorize export`.
    """
    from labcolor.trainer.checkpoint import CheckpointError
    from labcolor.trainer.cifar import CifarError
    from labcolor.trainer.data import DataError
    from labcolor.trainer.recalibrate import RecalibrationError, recalibrate_checkpoint

    if out is None:
        out = checkpoint.with_name(f"{checkpoint.stem}-recal.pt")
    if out.resolve() == checkpoint.resolve():
        raise _fail(f"{out}: would overwrite the input checkpoint; choose another --out")
    try:
        with Progress(TextColumn("recalibrating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err, transient=True) as bar:
            task = bar.add_task("batches", total=None)
            record = recalibrate_checkpoint(
                checkpoint, out, passes=passes, batch_size=batch_size, data=data,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except (CheckpointError, DataError, CifarError, ConfigError, RecalibrationError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    err.print(f"wrote {out}: BatchNorm statistics from {record['images']} training crops ({passes} passes)",
              highlight=False)


# ---- eval / curves commands (evaluation) ----

_EVAL_DATA, _EVAL_RUN, _EVAL_OUT = "Data", "Models", "Output"


@app.command("eval")
def eval_command(
    models: Annotated[
        list[Path], typer.Argument(help="One or more .onnx models from `colorize export`.", metavar="MODEL.onnx...")
    ],
    data: Annotated[
        Path,
        typer.Option("--data", "-d", help="Colour ground truth: a folder of pictures (recursive), a picture, "
                     "or CIFAR-10 (archive or cifar-10-batches-py folder; its test batch is used).",
                     rich_help_panel=_EVAL_DATA, show_default=False),
    ],
    limit: Annotated[
        Optional[int], typer.Option(help="Use only the first N pictures.", rich_help_panel=_EVAL_DATA)
    ] = None,
    resize: Annotated[
        Optional[int],
        typer.Option(help="Shrink the ground truth to this longer side (px) first, for speed.",
                     rich_help_panel=_EVAL_DATA),
    ] = None,
    size: Annotated[
        Optional[int],
        typer.Option(help="Working size (px) the network sees. Default: each picture's longer side, at most the "
                     "model's inference_size (no upscaling: CIFAR-10 is colorized at 32 px).",
                     rich_help_panel=_EVAL_RUN),
    ] = None,
    device: Annotated[
        str, typer.Option(help="auto (CUDA if it really loads, else CPU), cpu, cuda or cuda:N.",
                          rich_help_panel=_EVAL_RUN)
    ] = "auto",
    batch_size: Annotated[
        Optional[int], typer.Option(help="Pictures per inference. Default: 8 on CUDA, 1 on CPU.",
                                    rich_help_panel=_EVAL_RUN)
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for metrics.json, report.html and grid.png.",
                           rich_help_panel=_EVAL_OUT)
    ] = Path("eval"),
    rank_by: Annotated[
        str, typer.Option(help="Per-picture metric (of the first model) ordering the report's best/worst groups: "
                          "psnr, ssim, ciede2000, colourfulness_ratio, accuracy or auc.", rich_help_panel=_EVAL_OUT)
    ] = "ciede2000",
    report_images: Annotated[
        int, typer.Option(help="Pictures in report.html (half best, half worst when there are more).",
                          rich_help_panel=_EVAL_OUT)
    ] = 24,
    grid_images: Annotated[
        int, typer.Option(help="Pictures (rows) in grid.png, spread from best to worst.", rich_help_panel=_EVAL_OUT)
    ] = 8,
) -> None:
    """Score models against colour ground truth: PSNR, SSIM, CIEDE2000, colourfulness ratio, 2% accuracy, AuC.

    Each ground-truth picture becomes a grayscale input (its Lab L, a = b = 0), is colorized by every model, and
    scored; the grayscale input itself is the baseline row. Prints a table and writes metrics.json (every picture's
    scores), report.html (self-contained, sortable) and grid.png into --out.
    """
    from rich import box
    from rich.table import Table

    from labcolor.runtime import LabcolorError, MetadataError
    from labcolor.evaluation.evaluate import EvalError, evaluate
    from labcolor.evaluation.report import SUMMARY_HEADERS, summary_rows, write_outputs
    from labcolor.trainer.cifar import CifarError

    for name, value in (("--limit", limit), ("--size", size), ("--batch-size", batch_size),
                        ("--report-images", report_images), ("--grid-images", grid_images)):
        if value is not None and value <= 0:
            raise _fail(f"{name} must be a positive number, got {value}")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=err, transient=True, disable=not err.is_terminal) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        try:
            result = evaluate(models, data, device=device, size=size, batch_size=batch_size, limit=limit,
                              resize=resize, rank_by=rank_by, report_images=report_images,
                              grid_images=grid_images, progress=progress)
            paths = write_outputs(result, out)
        except (EvalError, CifarError, LabcolorError, MetadataError, FileNotFoundError, OSError) as exc:
            raise _fail(str(exc)) from None
        except KeyboardInterrupt:
            raise _fail("interrupted", 130) from None
    d = result.data
    table = Table(title=f"{d.source}: {len(d.pictures)} pictures ({d.kind})", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for i, header in enumerate(SUMMARY_HEADERS):
        table.add_column(header, justify="left" if i == 0 else "right", no_wrap=True)
    for row in summary_rows(result, markup=True):
        table.add_row(*row)
    Console().print(table)
    for name, reason in d.skipped:
        err.print(f"[yellow]skipped[/] {name}: {reason}", highlight=False, soft_wrap=True)
    err.print(f"metrics: {paths['json']}\nreport:  {paths['html']}\ngrid:    {paths['grid']}", highlight=False)


@app.command("curves")
def curves_command(
    runs: Annotated[
        list[Path],
        typer.Argument(help="Run folders or their metrics.jsonl; several are overlaid.", metavar="RUN...",
                       show_default=False),
    ],
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Plot file (.png, .svg or .pdf). Default: curves.png in the run folder "
                     "(for several runs: in the current folder)."),
    ] = None,
    title: Annotated[Optional[str], typer.Option(help="Figure title. Default: the run names.")] = None,
) -> None:
    """Plot a training run's G/D losses, validation L1 and PSNR, learning rate and throughput per epoch.

    Needs matplotlib: pip install 'labcolor[plot]'.
    """
    from labcolor.trainer.curves import CurvesError, metrics_path, plot_curves

    if out is None:
        out = metrics_path(runs[0]).parent / "curves.png" if len(runs) == 1 else Path("curves.png")
    try:
        written = plot_curves(runs, out, title=title)
    except (CurvesError, FileNotFoundError, OSError) as exc:
        raise _fail(str(exc)) from None
    err.print(f"curves: {written}", highlight=False)


# ---- export / info commands (exporter) ----

import labcolor.export as _export_defaults  # noqa: E402 - torch-free package root: only defaults and ExportError


@app.command("export")
def export_command(
    checkpoint: Annotated[Path, typer.Argument(help="A labcolor checkpoint.pt written by `colorize train`.")],
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="The .onnx file to write. Default: model[-fp16|-int8].onnx beside CHECKPOINT."),
    ] = None,
    fp16: Annotated[
        bool, typer.Option("--fp16", help="float16 weights and compute (inputs/outputs stay float32).")
    ] = False,
    int8: Annotated[
        bool, typer.Option("--int8", help="int8 static quantization (onnxruntime QDQ), refused if its ab error is too large.")
    ] = False,
    opset: Annotated[int, typer.Option(help="ONNX opset (17 or newer).")] = _export_defaults.DEFAULT_OPSET,
    inference_size: Annotated[
        Optional[int],
        typer.Option(help="Recommended working size in px recorded in the model. Default: max(256, training size)."),
    ] = None,
    calibration: Annotated[
        Optional[Path],
        typer.Option(help="Folder of pictures for int8 calibration and parity checks. Default: synthetic pictures."),
    ] = None,
    int8_max_error: Annotated[
        float, typer.Option(help="--int8: refuse when the mean ab error vs PyTorch exceeds this (Lab units).")
    ] = _export_defaults.INT8_MAX_MEAN_AB,
    int8_float_levels: Annotated[
        Optional[int],
        typer.Option(help="--int8: outermost decoder levels kept in float. Default: the fewest that meet the bound."),
    ] = None,
    force: Annotated[bool, typer.Option(help="--int8: write the model even when its error exceeds the bound.")] = False,
) -> None:
    """Export a checkpoint's generator to a checked, self-describing ONNX model.

    Dynamic batch, height and width (multiples of the model's size multiple). Before anything is written: onnx.checker
    full check and onnxruntime vs PyTorch parity on random and photo-like inputs at several sizes and two batch sizes.
    """
    from labcolor.export import ExportError
    from labcolor.export.exporter import export_generator

    if fp16 and int8:
        raise _fail("--fp16 and --int8 exclude each other")
    precision = "fp16" if fp16 else "int8" if int8 else "fp32"
    if out is None:
        out = checkpoint.parent / ("model.onnx" if precision == "fp32" else f"model-{precision}.onnx")
    try:
        report = export_generator(
            checkpoint,
            out,
            opset=opset,
            precision=precision,
            inference_size=inference_size,
            calibration=calibration,
            int8_max_error=int8_max_error,
            int8_float_levels=int8_float_levels,
            force=force,
        )
    except (ExportError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    for line in report.lines():
        err.print(line, highlight=False, markup=False, soft_wrap=True)


@app.command("info")
def info_command(
    model: Annotated[Path, typer.Argument(help="A .onnx model written by `colorize export`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print everything, full metadata included, as JSON.")] = False,
    providers: Annotated[
        bool, typer.Option(help="Check which onnxruntime execution providers can run the model here.")
    ] = True,
) -> None:
    """Show a model's metadata, inputs and outputs, opset, size, parameters and usable execution providers."""
    import json

    from labcolor.runtime.info import ModelFileError, inspect_model

    try:
        info = inspect_model(model, providers=providers)
    except ModelFileError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(info.to_dict(), indent=2, sort_keys=True))
    else:
        typer.echo("\n".join(info.lines()))


# ---- colorize PATH... default command (runtime) ----

_RUN, _RUN_MODEL, _RUN_SPEED = "Output", "Model", "Speed"
app.info.epilog = (
    "[b]Default command:[/] [cyan]colorize PATH...[/] means [cyan]colorize run PATH...[/] (see colorize run --help); "
    "a file or folder named like a command is reached by its path, e.g. [cyan]colorize ./train[/]"
)


@app.command("run")
def run_command(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Pictures and/or folders (walked recursively).", show_default=False, metavar="PATH"),
    ],
    output: Annotated[
        Optional[Path],
        typer.Option(
            "--output", "-o",
            help="Output folder, mirroring the inputs' relative paths. Default: <folder>_colorized beside each "
            "input folder (for a file: beside the folder that holds it). Never inside an input folder.",
            rich_help_panel=_RUN,
        ),
    ] = None,
    fmt: Annotated[
        Optional[str],
        typer.Option(
            "--format", "-f",
            help="Output format (jpg, png, webp, tiff, bmp, ...). Default: the input's own format "
            "(PNG for formats OpenCV cannot write in colour). 16-bit stays 16-bit in png/tiff/ppm, else 8-bit.",
            rich_help_panel=_RUN,
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Redo pictures whose output exists (default: skip them, so a re-run resumes).",
                           rich_help_panel=_RUN)
    ] = False,
    model: Annotated[
        Optional[Path],
        typer.Option("--model", "-m", help="A .onnx model from `colorize export`. Default: the shipped model.",
                     rich_help_panel=_RUN_MODEL),
    ] = None,
    size: Annotated[
        Optional[int],
        typer.Option(help="Working size in px (longer side) the network sees; the result keeps full resolution. "
                     "Default: the model's inference_size.", rich_help_panel=_RUN_MODEL),
    ] = None,
    device: Annotated[
        str, typer.Option(help="auto (CUDA if it really loads, else CPU), cpu, cuda or cuda:N.",
                          rich_help_panel=_RUN_SPEED)
    ] = "auto",
    batch_size: Annotated[
        Optional[int], typer.Option(help="Pictures per inference. Default: 8 on CUDA, 1 on CPU.",
                                    rich_help_panel=_RUN_SPEED)
    ] = None,
    workers: Annotated[
        Optional[int], typer.Option(help="Pictures processed in parallel. Default: one per CPU core.",
                                    rich_help_panel=_RUN_SPEED)
    ] = None,
    threads: Annotated[
        Optional[int], typer.Option(help="onnxruntime threads per inference. Default: CPU cores / workers.",
                                    rich_help_panel=_RUN_SPEED)
    ] = None,
) -> None:
    """Colorize pictures: files and folders (recursive) -> colour copies at full resolution. The default command.

    [cyan]colorize photos/[/] writes photos_colorized/ beside photos/, mirroring sub-folders; [cyan]colorize ./train[/] reaches a folder named like a command. Gray, colour (taken as its lightness), alpha (kept), 16-bit, palette and EXIF-rotated pictures are read; folders are searched for known picture extensions, hidden files skipped.

    Each output is written atomically (temporary file, then rename); outputs that exist are skipped, so an interrupted run resumes where it stopped. Inputs are never modified. Bad files are reported with a reason and the run goes on; exit code 1 if any file failed, 2 for bad usage.
    """
    import cv2
    from rich.progress import ProgressColumn
    from rich.text import Text

    from labcolor.runtime import LabcolorError, Colorizer, MetadataError, Summary
    from labcolor.core.imageio import output_suffix
    from labcolor.runtime.jobs import count_jobs

    for name, value in (("--size", size), ("--batch-size", batch_size), ("--workers", workers)):
        if value is not None and value <= 0:
            raise _fail(f"{name} must be a positive number, got {value}")
    if threads is not None and threads < 0:
        raise _fail(f"--threads must be 0 (onnxruntime's default) or more, got {threads}")
    # Per-file decode failures are reported in the summary; OpenCV's own stderr lines would only repeat them.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        if fmt is not None:
            output_suffix("", fmt)
        total = count_jobs(paths, output, fmt)
        colorizer = Colorizer(model, device, size=size, threads=threads, batch_size=batch_size)
    except (LabcolorError, MetadataError, FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    if total == 0:
        err.print("no pictures found (folders are searched for known picture extensions)", highlight=False)
        return
    logging.getLogger("labcolor").info(
        "%d picture(s), model %s, %s, working size %d, batch %d",
        total, colorizer.model_path.name, colorizer.device, colorizer.size, colorizer.batch_size,
    )

    class _Rate(ProgressColumn):
        """Pictures actually colorized per second (skipped ones are free and would inflate it)."""

        def render(self, task: Any) -> Text:
            done, started = task.fields.get("done", 0), task.fields.get("started") or time.perf_counter()
            elapsed = time.perf_counter() - started
            return Text(f"{done / elapsed:5.1f} img/s" if done and elapsed > 0 else "  --- img/s", style="cyan")

    summary = Summary()
    interrupted = False
    results = colorizer.colorize_folder(paths, output, overwrite=overwrite, format=fmt, workers=workers)
    with Progress(
        TextColumn("colorizing"), BarColumn(), MofNCompleteColumn(), _Rate(), TimeElapsedColumn(),
        TimeRemainingColumn(), TextColumn("{task.fields[note]}"), console=err, transient=True,
        disable=not err.is_terminal,
    ) as bar:
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
            interrupted = True
        except (LabcolorError, OSError) as exc:
            raise _fail(str(exc)) from None
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
        raise typer.Exit(1)


def _default_out(path: Path) -> Path:
    from labcolor.runtime.jobs import default_output_root

    return default_output_root(Path(path).resolve())


_ROOT_FLAGS = frozenset({"-v", "--verbose", "-q", "--quiet"})
_ROOT_ONLY = frozenset({"--help", "--install-completion", "--show-completion"})


def _route(args: list[str]) -> list[str]:
    """Make `run` the default command: `colorize [-v|-q] PATH... [opts]` -> `colorize [-v|-q] run PATH... [opts]`.

    Only the first token after the root flags decides: a command name stays a command (so a folder named
    `train` is given as ./train), --help stays the root's help, anything else (a path, or a `run` option such
    as -o) goes to `run`.
    """
    names = {c.name for c in app.registered_commands if c.name} | {g.name for g in app.registered_groups if g.name}
    i = 0
    while i < len(args) and args[i] in _ROOT_FLAGS:
        i += 1
    if i == len(args) or args[i] in names or args[i] in _ROOT_ONLY:
        return args
    # `colorize photos -q` reads naturally; run has no -v/-q of its own, so they move to the root.
    end = args.index("--") if "--" in args else len(args)
    rest = [a for a in args[i:end] if a not in _ROOT_FLAGS] + args[end:]
    moved = [a for a in args[i:end] if a in _ROOT_FLAGS]
    return [*args[:i], *moved, "run", *rest]


def main() -> None:
    """Console-script entry point; `colorize PATH...` runs the default command (see _route)."""
    import sys

    app(args=_route(sys.argv[1:]), prog_name="colorize")


if __name__ == "__main__":
    main()
