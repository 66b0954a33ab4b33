"""Checkpoint -> verified, self-describing ONNX generator.

`export_generator` rebuilds the generator from the checkpoint alone (eval mode, so dropout
is off and the noise input z is all zeros), exports it with torch's dynamo exporter with
dynamic batch, height and width, checks the graph (onnx.checker full check, onnxruntime vs
PyTorch on random and photo-like inputs at several sizes and two batch sizes), optionally
converts it to fp16 or int8 and checks that too, then writes the exact bytes it checked,
atomically. Nothing is written when a check fails.

The generator is made deployable first (export.deploy: exactly-equivalent rewrites, and for
int8 the quantizable decoder and the search over levels kept in float).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from labcolor.core import color
from labcolor.core.imageio import write_atomic
from labcolor.core.metadata import PRECISIONS, ModelMetadata
from labcolor.export import DEFAULT_OPSET, INT8_MAX_MEAN_AB, ExportError, verify
from labcolor.export.deploy import deployable, float_level_plan
from labcolor.export.describe import (
    INPUT_NAME,
    OUTPUT_NAME,
    build_metadata,
    default_inference_size,
    json_safe,
    set_metadata,
)
from labcolor.runtime.preprocess import round_up
from labcolor.trainer.checkpoint import CheckpointError, load_generator
from labcolor.trainer.networks import UNetGenerator, count_parameters

log = logging.getLogger(__name__)

MIN_OPSET = 17  # the oldest opset offered and tested

# Tolerances, all on |ab_n| (network units; x 110 for Lab units).
FP32_TOLERANCE = 1e-4  # measured <= ~1e-6; 1e-4 leaves room for other CPUs' kernels
FP16_TOLERANCE = 1e-2  # max |d ab_n| of the fp16 model vs PyTorch fp32 (1.1 Lab units)

CALIBRATION_COUNT = 32  # calibration pictures for int8 activation ranges
CALIBRATION_BATCH = 4


@dataclass
class ExportReport:
    """What was written and the figures that allowed it."""

    path: Path
    precision: str
    opset: int
    metadata: ModelMetadata
    parameters: int  # generator parameters (PyTorch count, before BatchNorm folding)
    file_bytes: int
    parity: verify.ParityReport  # the written model vs PyTorch fp32
    fp32_parity: verify.ParityReport | None = None  # fp16/int8: the fp32 graph they were made from vs PyTorch
    error_bound: float | None = None  # fp16: max |d ab_n|; int8: mean |d ab| in Lab units
    forced: bool = False  # int8 error over the bound, written anyway because force=True
    opencv: verify.ParityReport | None = None  # OpenCV DNN vs onnxruntime on the written bytes
    opencv_error: str | None = None  # why OpenCV could not run it, if it could not
    float_levels: int | None = None  # int8: outermost decoder levels kept in float
    attempts: list[tuple[int, float]] = field(default_factory=list)  # int8: (float levels, mean |d ab|) tried

    @property
    def mean_ab_error(self) -> float:
        """Mean |d ab| of the written model vs PyTorch, in Lab units."""
        return self.parity.mean_abs * color.AB_SCALE

    def lines(self) -> list[str]:
        m = self.metadata
        out = [
            (f"wrote {self.path} ({self.file_bytes / 1e6:.2f} MB, {self.precision}, opset {self.opset}, "
             f"{self.parameters:,} generator parameters)"),
            (f"sizes: H, W multiples of {m.size_multiple}; trained at {m.train_size} px; "
             f"recommended {m.inference_size} px"),
        ]
        if self.fp32_parity is not None:
            out.append("fp32 graph  " + self.fp32_parity.summary())
        out.append(f"{self.precision} model  " + self.parity.summary())
        if self.precision == "int8":
            tried = ", ".join(f"{k} -> {e:.3f}" for k, e in self.attempts)
            out.append(
                f"int8 cost: mean |d ab| {self.mean_ab_error:.3f} Lab units, p99 {self.parity.p99_abs * color.AB_SCALE:.3f}, "
                f"max {self.parity.max_abs * color.AB_SCALE:.3f} (bound: mean <= {self.error_bound})"
                + ("  OVER THE BOUND, written because forced" if self.forced else "")
            )
            out.append(
                f"int8 layout: {self.float_levels} outermost decoder level(s) kept in float "
                f"(float levels -> mean |d ab| tried: {tried})"
            )
        if self.opencv is not None:
            out.append("portability  " + self.opencv.summary())
        elif self.opencv_error:
            out.append(f"portability  OpenCV DNN could not run it: {self.opencv_error}")
        return out


# --------------------------------------------------------------------------- export


def _torch_export(module: nn.Module, size_multiple: int, opset: int) -> onnx.ModelProto:
    """torch.onnx (dynamo) export with dynamic N and H, W = size_multiple * k."""
    from torch.export import Dim

    batch = Dim("batch", min=1)
    h = Dim("h", min=1)
    w = Dim("w", min=1)
    # Batch 2 and a 2x2 bottleneck: sizes of 1 would be specialised into the graph.
    dummy = torch.zeros(2, 1, 2 * size_multiple, 2 * size_multiple)
    with warnings.catch_warnings(), _quiet_loggers("torch.onnx", "torch.export", "torch._export", "onnx_ir", "onnxscript"):
        warnings.simplefilter("ignore")  # the exporter warns about things that do not apply to a pure CNN
        try:
            program = torch.onnx.export(
                module,
                (dummy,),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                dynamo=True,
                external_data=False,
                optimize=True,  # constant folding, BatchNorm folded into Conv/ConvTranspose
                verbose=False,
                dynamic_shapes={"L": {0: batch, 2: size_multiple * h, 3: size_multiple * w}},
            )
        except Exception as exc:  # the exporter raises many types; all mean the same to a caller
            first_line = (str(exc).strip().splitlines() or [""])[0]
            raise ExportError(f"torch.onnx.export failed: {exc.__class__.__name__}: {first_line}") from exc
    model = program.model_proto
    _tidy(model)
    return model


@contextlib.contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    """The exporter's libraries log every optimisation pass at INFO, and warn about things that do not
    concern a pure CNN (torchvision ops not registered, opset down-conversion through the C API)."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.ERROR))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _tidy(model: onnx.ModelProto) -> None:
    """Readable I/O dims (N, H, W shared by input and output) and no exporter debug annotations.

    The exporter names dims after its symbols ("16*h") and annotates every node with torch
    provenance (source lines of the developer's checkout); neither belongs in a release file.
    """
    for value, dims in ((model.graph.input[0], ("N", None, "H", "W")), (model.graph.output[0], ("N", None, "H", "W"))):
        for dim, name in zip(value.type.tensor_type.shape.dim, dims):
            if name is not None:
                dim.ClearField("dim_value")
                dim.dim_param = name
    for node in model.graph.node:
        del node.metadata_props[:]
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        del value.metadata_props[:]
    for init in model.graph.initializer:
        del init.metadata_props[:]
    del model.graph.metadata_props[:]
    del model.metadata_props[:]


def check_graph(model: onnx.ModelProto | bytes, what: str) -> None:
    """onnx.checker full check (structure, types, shape inference); ExportError if it fails."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"{what} failed onnx.checker: {exc}") from exc




def _opencv_check(data: bytes, batches: list[tuple[str, np.ndarray]], report: ExportReport) -> None:
    """Run the written bytes in OpenCV DNN as well (an independent ONNX consumer); reported, never fatal."""
    try:
        report.opencv = verify.compare(
            verify.ort_runner(data),
            verify.opencv_runner(data),
            batches,
            reference_name="onnxruntime",
            candidate_name="OpenCV DNN",
        )
    except Exception as exc:  # cv2.error or ExportError: OpenCV's support is a portability note, not a gate
        report.opencv_error = ((str(exc).strip().splitlines() or [exc.__class__.__name__])[-1])[:300]
        log.warning("OpenCV DNN could not run the exported model: %s", report.opencv_error)


def _export_fp32(
    generator: UNetGenerator,
    metadata: ModelMetadata,
    batches: list[tuple[str, np.ndarray]],
    opset: int,
    *,
    quantizable: bool = False,
    float_levels: int = 0,
) -> tuple[onnx.ModelProto, verify.ParityReport]:
    """Export, full-check and compare with PyTorch (tolerance FP32_TOLERANCE) one fp32 graph."""
    module = deployable(generator, quantizable=quantizable, float_levels=float_levels)
    model = _torch_export(module, generator.spec.size_multiple, opset)
    set_metadata(model, metadata)
    data = model.SerializeToString()
    check_graph(data, "the fp32 graph")
    parity = verify.compare(
        verify.torch_runner(generator), verify.ort_runner(data), batches,
        reference_name="PyTorch", candidate_name="onnxruntime fp32", tolerance=FP32_TOLERANCE,
    )
    return model, parity


def _calibration_batches(
    calibration: Path | None, count: int, size: int, skip: int
) -> list[np.ndarray]:
    """Photo L batches for int8 calibration; from the folder (skipping the pictures the parity check uses)
    or synthetic with a seed of their own, so calibration and error measurement never share a picture."""
    if calibration is not None:
        rgb = verify.load_photos(calibration, count, size, size, offset=skip)
        if len(verify.image_files(calibration)) < count + skip:
            log.warning("%s: fewer than %d pictures; calibration reuses some of the parity pictures", calibration,
                        count + skip)
    else:
        rgb = verify.synthetic_photos(count, size, size, seed=12345)
    l_n = verify.photo_l(rgb)
    return [l_n[i : i + CALIBRATION_BATCH] for i in range(0, len(l_n), CALIBRATION_BATCH)]


def export_generator(
    checkpoint: Path,
    out: Path,
    *,
    opset: int = DEFAULT_OPSET,
    precision: str = "fp32",
    inference_size: int | None = None,
    calibration: Path | None = None,
    int8_max_error: float = INT8_MAX_MEAN_AB,
    int8_float_levels: int | None = None,
    force: bool = False,
    check_opencv: bool = True,
    parity_shapes: list[tuple[int, int, int]] | None = None,
    calibration_count: int = CALIBRATION_COUNT,
    calibration_size: int | None = None,
) -> ExportReport:
    """Export the generator of `checkpoint` to `out` after checking it; see the module docstring.

    precision: fp32 | fp16 (float16 weights and compute, float32 inputs/outputs) | int8
    (onnxruntime static QDQ quantization, calibrated on `calibration` pictures or on
    synthetic photo-like ones; refused when its mean ab error on other pictures exceeds
    `int8_max_error` Lab units, unless `force`). int8_float_levels: outermost decoder
    levels int8 keeps in float (None: the fewest that meet the bound). `parity_shapes`
    ((batch, H, W) triples) and the calibration knobs exist so tests can stay small; the
    defaults are for real use.
    """
    checkpoint, out = Path(checkpoint), Path(out)
    if precision not in PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ExportError(f"--opset {opset} is outside the supported range {MIN_OPSET}..{newest}")
    if calibration is not None and not Path(calibration).is_dir():
        raise ExportError(f"{calibration}: --calibration must be a folder of pictures")
    if out.is_dir():
        raise ExportError(f"{out}: is a folder; give the .onnx file to write")

    try:
        generator, ckpt = load_generator(checkpoint)
    except CheckpointError as exc:
        raise ExportError(str(exc)) from exc
    except (KeyError, TypeError, RuntimeError) as exc:  # spec/state that does not rebuild
        raise ExportError(f"{checkpoint}: the generator cannot be rebuilt from this checkpoint ({exc})") from exc
    spec = generator.spec
    m = spec.size_multiple
    train_size = int(ckpt["config"]["size"])
    if inference_size is None:
        inference_size = default_inference_size(train_size, m)
    elif inference_size < m:
        raise ExportError(f"--inference-size {inference_size} is below the model's size multiple {m}")
    plan = float_level_plan(spec.depth, int8_float_levels) if precision == "int8" else []

    metadata = build_metadata(ckpt, inference_size=inference_size, precision=precision, opset=opset)
    reference = verify.torch_runner(generator)  # the checkpoint's own forward(), z = zeros in eval mode
    batches = verify.parity_inputs(m, inference_size, photos=calibration, shapes=parity_shapes)

    fp32_parity: verify.ParityReport | None = None
    error_bound: float | None = None
    forced = False
    float_levels: int | None = None
    attempts: list[tuple[int, float]] = []
    if precision == "fp32":
        model, parity = _export_fp32(generator, metadata, batches, opset)
    elif precision == "fp16":
        from labcolor.export.quantize import to_fp16

        fp32_model, fp32_parity = _export_fp32(generator, metadata, batches, opset)
        model = to_fp16(fp32_model)
        set_metadata(model, metadata)
        check_graph(model.SerializeToString(), "the fp16 graph")
        error_bound = FP16_TOLERANCE
        parity = verify.compare(
            reference, verify.ort_runner(model.SerializeToString()), batches,
            reference_name="PyTorch fp32", candidate_name="onnxruntime fp16", tolerance=FP16_TOLERANCE,
        )
    else:
        from labcolor.export.quantize import to_int8

        cal_size = calibration_size or min(round_up(max(256, 2 * m), m), max(inference_size, 2 * m))
        used = sum(len(l_n) for kind, l_n in batches if kind == "photos")
        cal = _calibration_batches(calibration, calibration_count, cal_size, skip=used)
        # Quantization error is judged on photo inputs only (random L is not what the model sees),
        # none of which were used for calibration.
        photo_batches = [(k, l) for k, l in batches if k != "random"]
        error_bound = int8_max_error
        best: tuple[float, int, onnx.ModelProto, verify.ParityReport, verify.ParityReport] | None = None
        for levels in plan:
            fp32_model, levels_fp32_parity = _export_fp32(
                generator, metadata, batches, opset, quantizable=True, float_levels=levels
            )
            quantized = to_int8(fp32_model, cal, input_name=INPUT_NAME)
            set_metadata(quantized, metadata)
            check_graph(quantized.SerializeToString(), "the int8 graph")
            q_parity = verify.compare(
                reference, verify.ort_runner(quantized.SerializeToString()), photo_batches,
                reference_name="PyTorch fp32", candidate_name="onnxruntime int8",
            )
            mean_ab = q_parity.mean_abs * color.AB_SCALE
            attempts.append((levels, mean_ab))
            log.info("int8 with %d outermost decoder level(s) in float: mean |d ab| %.3f Lab units", levels, mean_ab)
            if best is None or mean_ab < best[0]:
                best = (mean_ab, levels, quantized, q_parity, levels_fp32_parity)
            if mean_ab <= int8_max_error:
                best = (mean_ab, levels, quantized, q_parity, levels_fp32_parity)
                break
        assert best is not None
        mean_ab, float_levels, model, parity, fp32_parity = best
        if mean_ab > int8_max_error:
            if not force:
                tried = ", ".join(f"{k} float level(s): {e:.3f}" for k, e in attempts)
                raise ExportError(
                    f"int8 quantization costs a mean ab error of {mean_ab:.3f} Lab units at best (max "
                    f"{parity.max_abs * color.AB_SCALE:.2f}), over the bound of {int8_max_error} ({tried}); "
                    "nothing written (use fp32/fp16, calibrate on your own pictures, raise the bound, or force)"
                )
            forced = True
            log.warning("int8 error %.3f over the bound %.3f: written because forced", mean_ab, int8_max_error)

    # Record what the checks measured in the model itself (metadata only: the graph is the one checked).
    metadata = _with_verification(metadata, parity, fp32_parity, float_levels)
    set_metadata(model, metadata)
    data = model.SerializeToString()
    check_graph(data, f"the {precision} graph")

    report = ExportReport(
        path=out,
        precision=precision,
        opset=opset,
        metadata=metadata,
        parameters=count_parameters(generator),
        file_bytes=len(data),
        parity=parity,
        fp32_parity=fp32_parity,
        error_bound=error_bound,
        forced=forced,
        float_levels=float_levels,
        attempts=attempts,
    )
    if check_opencv:
        _opencv_check(data, [b for b in batches if b[0] != "random"][:2], report)
    write_atomic(out, data, fsync=True)
    log.debug("wrote %s (%d bytes)", out, len(data))
    return report


def _with_verification(
    metadata: ModelMetadata,
    parity: verify.ParityReport,
    fp32_parity: verify.ParityReport | None,
    float_levels: int | None,
) -> ModelMetadata:
    """metadata with training.exporter.verification: the measured differences from PyTorch, in Lab units."""

    def figures(r: verify.ParityReport) -> dict[str, Any]:
        return {
            "candidate": r.candidate,
            "inputs": sorted({c.inputs for c in r.cases}),
            "shapes": sorted({(c.batch, c.height, c.width) for c in r.cases}),
            "max_abs_ab": r.max_abs * color.AB_SCALE,
            "mean_abs_ab": r.mean_abs * color.AB_SCALE,
            "p99_abs_ab": r.p99_abs * color.AB_SCALE,
        }

    training = copy.deepcopy(metadata.training)
    exporter = training.setdefault("exporter", {})
    exporter["verification"] = {
        "reference": "PyTorch fp32 generator from the checkpoint (eval mode)",
        "model": figures(parity),
        "fp32_graph": figures(fp32_parity) if fp32_parity is not None else None,
    }
    if float_levels is not None:
        exporter["int8_float_decoder_levels"] = float_levels
    return dataclasses.replace(metadata, training=json_safe(training))
