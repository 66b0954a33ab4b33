"""Checkpoint -> verified, self-describing ONNX generator.

`export_generator` rebuilds the generator from the checkpoint alone (eval mode, so dropout
is off and the noise input z is all zeros), makes it deployable (export.deploy: exactly-equivalent
rewrites, and for int8 the quantizable decoder and the search over levels kept in float), exports
it with torch's dynamo exporter with dynamic batch, height and width, checks the graph
(onnx.checker full check, onnxruntime vs PyTorch on random and photo-like inputs at several
sizes and two batch sizes), optionally converts it to fp16 or int8 (export.quantize) and checks
that too. Only then is the chosen model described, once (export.describe: the metadata, with
the figures the checks measured), and the described bytes are checked again and written
atomically. Nothing is written when a check fails.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from labcolor.core import color
from labcolor.core.imageio import write_atomic
from labcolor.core.metadata import MAX_SATURATION, PRECISIONS, ModelMetadata
from labcolor.export import DEFAULT_OPSET, INT8_MAX_MEAN_AB, ExportError, verify
from labcolor.export.checks import check_graph
from labcolor.export.deploy import INPUT_NAME, deployable, float_level_plan, to_onnx
from labcolor.export.describe import build_metadata, default_inference_size, describe
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


@dataclass
class _Converted:
    """The model chosen for writing (not yet described) and what its checks measured; see ExportReport."""

    model: onnx.ModelProto
    parity: verify.ParityReport
    fp32_parity: verify.ParityReport | None = None
    error_bound: float | None = None
    forced: bool = False
    float_levels: int | None = None
    attempts: list[tuple[int, float]] = field(default_factory=list)


def _export_fp32(
    generator: UNetGenerator,
    batches: list[tuple[str, np.ndarray]],
    opset: int,
    *,
    quantizable: bool = False,
    float_levels: int = 0,
) -> _Converted:
    """Export, full-check and compare with PyTorch (tolerance FP32_TOLERANCE) one fp32 graph."""
    module = deployable(generator, quantizable=quantizable, float_levels=float_levels)
    model = to_onnx(module, generator.spec.size_multiple, opset)
    data = model.SerializeToString()
    check_graph(data, "the fp32 graph")
    parity = verify.compare(
        verify.torch_runner(generator), verify.ort_runner(data), batches,
        reference_name="PyTorch", candidate_name="onnxruntime fp32", tolerance=FP32_TOLERANCE,
    )
    return _Converted(model, parity)


def _check_converted(
    model: onnx.ModelProto,
    precision: str,
    reference: verify.Runner,
    batches: list[tuple[str, np.ndarray]],
    tolerance: float | None = None,
) -> verify.ParityReport:
    """Full-check a converted (fp16/int8) graph and compare it with the PyTorch fp32 generator."""
    data = model.SerializeToString()
    check_graph(data, f"the {precision} graph")
    return verify.compare(
        reference, verify.ort_runner(data), batches,
        reference_name="PyTorch fp32", candidate_name=f"onnxruntime {precision}", tolerance=tolerance,
    )


def _export_half(
    generator: UNetGenerator, reference: verify.Runner, batches: list[tuple[str, np.ndarray]], opset: int,
    precision: str,
) -> _Converted:
    """The fp32 graph, checked, converted to `precision` (fp16: float16 compute; fp16-weights: float16 storage,
    float32 compute) and checked against PyTorch within FP16_TOLERANCE."""
    from labcolor.export.quantize import to_fp16, to_fp16_weights

    fp32 = _export_fp32(generator, batches, opset)
    model = (to_fp16 if precision == "fp16" else to_fp16_weights)(fp32.model)
    parity = _check_converted(model, precision, reference, batches, tolerance=FP16_TOLERANCE)
    return _Converted(model, parity, fp32_parity=fp32.parity, error_bound=FP16_TOLERANCE)


def _export_int8(
    generator: UNetGenerator,
    reference: verify.Runner,
    batches: list[tuple[str, np.ndarray]],
    opset: int,
    *,
    plan: list[int],
    calibration: list[np.ndarray],
    max_error: float,
    force: bool,
) -> _Converted:
    """int8 with each number of float decoder levels in `plan` until one meets `max_error` (mean |d ab|, Lab units).

    Quantization error is judged on photo inputs only (random L is not what the model sees), none of
    which were used for calibration. Over the bound at best: ExportError, or the best one when `force`.
    """
    from labcolor.export.quantize import to_int8

    photo_batches = [(k, l_n) for k, l_n in batches if k != "random"]
    attempts: list[tuple[int, float]] = []
    best: _Converted | None = None
    for levels in plan:
        fp32 = _export_fp32(generator, batches, opset, quantizable=True, float_levels=levels)
        model = to_int8(fp32.model, calibration, input_name=INPUT_NAME)
        parity = _check_converted(model, "int8", reference, photo_batches)
        mean_ab = parity.mean_abs * color.AB_SCALE
        attempts.append((levels, mean_ab))
        log.info("int8 with %d outermost decoder level(s) in float: mean |d ab| %.3f Lab units", levels, mean_ab)
        if best is None or parity.mean_abs < best.parity.mean_abs:
            best = _Converted(model, parity, fp32_parity=fp32.parity, error_bound=max_error, float_levels=levels)
        if mean_ab <= max_error:  # the first one within the bound is also the best so far: all before were over
            break
    assert best is not None, "float_level_plan returns at least one level count"
    best.attempts = attempts
    mean_ab = best.parity.mean_abs * color.AB_SCALE
    if mean_ab > max_error:
        if not force:
            tried = ", ".join(f"{k} float level(s): {e:.3f}" for k, e in attempts)
            raise ExportError(
                f"int8 quantization costs a mean ab error of {mean_ab:.3f} Lab units at best (max "
                f"{best.parity.max_abs * color.AB_SCALE:.2f}), over the bound of {max_error} ({tried}); "
                "nothing written (use fp32/fp16, calibrate on your own pictures, raise the bound, or force)"
            )
        best.forced = True
        log.warning("int8 error %.3f over the bound %.3f: written because forced", mean_ab, max_error)
    return best


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
    saturation: float = 1.0,
) -> ExportReport:
    """Export the generator of `checkpoint` to `out` after checking it; see the module docstring.

    precision: fp32 | fp16-weights (float16 weights, float32 compute: fp32's speed on CPU at half its size)
        | fp16 (float16 weights and compute, float32 inputs/outputs) | int8
    (onnxruntime static QDQ quantization, calibrated on `calibration` pictures or on
    synthetic photo-like ones; refused when its mean ab error on other pictures exceeds
    `int8_max_error` Lab units, unless `force`). int8_float_levels: outermost decoder
    levels int8 keeps in float (None: the fewest that meet the bound). saturation: the colour
    strength recorded as the model's default (core.metadata; 1 = its own output). `parity_shapes`
    ((batch, H, W) triples) and the calibration knobs exist so tests can stay small; the
    defaults are for real use.
    """
    checkpoint, out = Path(checkpoint), Path(out)
    if precision not in PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if not 0 <= saturation <= MAX_SATURATION:
        raise ExportError(f"saturation must be between 0 and {MAX_SATURATION}, got {saturation}")
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
    m = generator.spec.size_multiple
    train_size = int(ckpt["config"]["size"])
    if inference_size is None:
        inference_size = default_inference_size(train_size, m)
    elif inference_size < m:
        raise ExportError(f"--inference-size {inference_size} is below the model's size multiple {m}")
    plan = float_level_plan(generator.spec.depth, int8_float_levels) if precision == "int8" else []

    reference = verify.torch_runner(generator)  # the checkpoint's own forward(), z = zeros in eval mode
    batches = verify.parity_inputs(m, inference_size, photos=calibration, shapes=parity_shapes)
    if precision == "fp32":
        converted = _export_fp32(generator, batches, opset)
    elif precision in ("fp16", "fp16-weights"):
        converted = _export_half(generator, reference, batches, opset, precision)
    else:
        cal_size = calibration_size or min(round_up(max(256, 2 * m), m), max(inference_size, 2 * m))
        used = sum(len(l_n) for kind, l_n in batches if kind == "photos")
        cal = _calibration_batches(calibration, calibration_count, cal_size, skip=used)
        converted = _export_int8(generator, reference, batches, opset, plan=plan, calibration=cal,
                                 max_error=int8_max_error, force=force)

    # Described once, now that the checks have measured what the metadata records; the graph is the
    # one checked, and the described bytes are what gets checked again and written.
    metadata = build_metadata(
        ckpt, inference_size=inference_size, precision=precision, opset=opset,
        parity=converted.parity, fp32_parity=converted.fp32_parity, float_levels=converted.float_levels,
        saturation=saturation,
    )
    data = describe(converted.model, metadata)
    check_graph(data, f"the {precision} graph")

    report = ExportReport(
        path=out,
        precision=precision,
        opset=opset,
        metadata=metadata,
        parameters=count_parameters(generator),
        file_bytes=len(data),
        parity=converted.parity,
        fp32_parity=converted.fp32_parity,
        error_bound=converted.error_bound,
        forced=converted.forced,
        float_levels=converted.float_levels,
        attempts=converted.attempts,
    )
    if check_opencv:
        _opencv_check(data, [b for b in batches if b[0] != "random"][:2], report)
    write_atomic(out, data, fsync=True)
    log.debug("wrote %s (%d bytes)", out, len(data))
    return report
