"""`colorize export`: a checkpoint's generator -> a checked, self-describing ONNX model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import labcolor.export as defaults  # torch-free package root: only the defaults shown in --help
from labcolor.commands._common import err
from labcolor.core.errors import ConfigError


def export_command(
    checkpoint: Annotated[
        Path | None,
        typer.Argument(help="A labcolor checkpoint.pt written by `colorize train`; with --rgb also a labcolor .onnx "
                       "model (no PyTorch needed). With --rgb and no argument: the shipped default model.",
                       show_default=False),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o",
                     help="The .onnx file to write. Default: model[-fp16-weights|-fp16|-int8].onnx beside "
                     "CHECKPOINT."),
    ] = None,
    fp16_weights: Annotated[
        bool, typer.Option("--fp16-weights", help="float16 weights, float32 compute: half the size of fp32, as fast "
                           "as fp32 on CPU (the shipped default's form).")
    ] = False,
    fp16: Annotated[
        bool, typer.Option("--fp16", help="float16 weights and compute (inputs/outputs stay float32): for GPUs; "
                           "slower than fp32 on x86 CPUs, which lack float16 convolutions.")
    ] = False,
    int8: Annotated[
        bool,
        typer.Option("--int8", help="int8 static quantization (onnxruntime QDQ), refused if its ab error is too "
                     "large."),
    ] = False,
    opset: Annotated[int, typer.Option(help="ONNX opset (17 or newer).")] = defaults.DEFAULT_OPSET,
    inference_size: Annotated[
        int | None,
        typer.Option(help="Recommended working size in px recorded in the model. Default: max(256, training size)."),
    ] = None,
    calibration: Annotated[
        Path | None,
        typer.Option(help="Folder of pictures for int8 calibration and parity checks. Default: synthetic pictures."),
    ] = None,
    int8_max_error: Annotated[
        float, typer.Option(help="--int8: refuse when the mean ab error vs PyTorch exceeds this (Lab units).")
    ] = defaults.INT8_MAX_MEAN_AB,
    int8_float_levels: Annotated[
        int | None,
        typer.Option(help="--int8: outermost decoder levels kept in float. Default: the fewest that meet the bound."),
    ] = None,
    force: Annotated[bool, typer.Option(help="--int8: write the model even when its error exceeds the bound.")] = False,
    rgb: Annotated[
        bool, typer.Option("--rgb", help="One self-contained graph: uint8 RGB [H, W, 3] + saturation [1] in, colorized "
                           "uint8 RGB out, colour science included (for apps in any language, Node, browsers). "
                           "Verified against the Python runtime before it is written.")
    ] = False,
    saturation: Annotated[
        float, typer.Option(min=0.0, help="Colour strength recorded as the model's default (`colorize` uses it unless "
                            "told otherwise): 1 = the network's own colours. Choose it on validation pictures with "
                            "`colorize eval --saturation ...`.")
    ] = 1.0,
) -> None:
    """Export a checkpoint's generator to a checked, self-describing ONNX model.

    Dynamic batch, height and width (multiples of the model's size multiple). Before anything is written: onnx.checker
    full check and onnxruntime vs PyTorch parity on random and photo-like inputs at several sizes and two batch sizes.
    """
    if fp16 + fp16_weights + int8 > 1:
        raise ConfigError("--fp16-weights, --fp16 and --int8 exclude each other")
    precision = "fp16-weights" if fp16_weights else "fp16" if fp16 else "int8" if int8 else "fp32"
    if rgb:
        _export_rgb(checkpoint, out, precision, inference_size=inference_size, calibration=calibration, force=force,
                    opset=opset, saturation=saturation)
        return
    if checkpoint is None:
        raise ConfigError("give the checkpoint to export (only --rgb defaults to the shipped model)")
    if checkpoint.suffix.lower() == ".onnx":
        raise ConfigError(f"{checkpoint} is already an ONNX model; --rgb makes its RGB graph, other exports need the "
                          "checkpoint.pt it came from")
    from labcolor.export.exporter import export_generator

    if out is None:
        out = checkpoint.parent / ("model.onnx" if precision == "fp32" else f"model-{precision}.onnx")
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
        saturation=saturation,
    )
    for line in report.lines():
        err.print(line, highlight=False, markup=False, soft_wrap=True)


def _export_rgb(source: Path | None, out: Path | None, precision: str, *, inference_size: int | None,
                calibration: Path | None, force: bool, opset: int, saturation: float) -> None:
    """--rgb: a labcolor .onnx (or the shipped default) directly; a checkpoint first through the usual export."""
    import tempfile

    from labcolor.export.rgb import export_rgb

    if source is None:
        from labcolor.runtime.colorizer import default_model_path

        source = default_model_path()
    out = out or source.with_name(f"{source.stem}-rgb.onnx" if source.suffix == ".onnx" else "model-rgb.onnx")
    with tempfile.TemporaryDirectory(prefix="labcolor-rgb-") as tmp:
        if source.suffix.lower() != ".onnx":  # a checkpoint: its L -> ab model first, at the chosen precision
            from labcolor.export.exporter import export_generator

            model = Path(tmp) / "model.onnx"
            export_generator(source, model, opset=opset, precision=precision, inference_size=inference_size,
                             calibration=calibration, force=force, saturation=saturation)
            source = model
        elif precision != "fp32":
            raise ConfigError("--rgb of an .onnx model keeps its precision; --fp16/--fp16-weights/--int8 apply to "
                              "checkpoints")
        report = export_rgb(source, out, size=inference_size, photos=calibration, force=force)
    for line in report.lines():
        err.print(line, highlight=False, markup=False, soft_wrap=True)
