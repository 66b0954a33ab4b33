"""Lower-precision versions of an fp32 generator graph; inputs and outputs stay float32 in all of them.

* fp16-weights: the fp32 graph with every weight stored as float16 and cast back to float32 by a
  Cast node reading it. Half the file of fp32, computed in float32: onnxruntime folds the Casts
  into float32 constants when the session loads, so on CPU it runs exactly as fast as fp32.
  The true fp16 graph below runs slower there (x86 onnxruntime has no float16 convolution and
  casts around every node: 41 vs 32 ms per 256x192 picture for the default model, README).
* fp16: onnxruntime's float16 converter (``onnxruntime.transformers.float16``, shipped with
  onnxruntime, so no extra dependency) with ``keep_io_types``: float16 weights and compute,
  Cast nodes at the edges so callers keep feeding and reading float32.
* int8: onnxruntime static quantization in QDQ format. Weights int8 per output channel,
  activations uint8 (onnxruntime's fast u8s8 path on x86), ranges calibrated on photo-like
  L inputs. Only Conv is quantized: the exporter has already rewritten every ConvTranspose
  as Conv + DepthToSpace (export.deploy.PhaseConvTranspose), and quantizing Concat/ReLU on
  their own only adds Q/DQ pairs that onnxruntime does not fuse.
  Weights use the reduced range [-64, 64] (7 bits): on x86 CPUs without VNNI (AVX2 only,
  e.g. AMD Zen 2/3, Intel before Ice Lake/Alder Lake) onnxruntime's u8s8 kernels add pairs of
  u8 x s8 products in int16 with saturation (VPMADDUBSW), and 2 x 255 x 127 overflows it:
  the first Conv (raw L, large uint8 codes on bright pictures) then cost the test fixture
  1.5 Lab units instead of 0.17. With |w| <= 64 a pair stays <= 32640, so the int8 model
  computes the same on every CPU; the 7-bit weights cost ~0.01 Lab units.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx

from labcolor.export import ExportError

log = logging.getLogger(__name__)


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """float16 weights and compute with float32 inputs/outputs."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    try:
        # The converter mutates and returns its argument; give it a copy so the fp32 graph survives.
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        converted = convert_float_to_float16(copy, keep_io_types=True)
    except Exception as exc:  # the converter raises bare exceptions on graphs it does not understand
        raise ExportError(f"fp16 conversion failed: {exc}") from exc
    # The converter appends its input Casts after the nodes that read them; ONNX requires
    # topological order (onnx.checker rejects the graph, strict consumers would too).
    topological_sort(converted.graph)
    return converted


# Weights smaller than this stay float32 (biases, scalars): nothing to save, one Cast node each to pay.
FP16_WEIGHTS_MIN_ELEMENTS = 64


def to_fp16_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """float16 storage of the float32 weights, float32 compute: each large initializer W becomes W_fp16 plus a
    node Cast(W_fp16) -> W at the top of the graph, so every consumer reads the same name as before."""
    from onnx import TensorProto, helper, numpy_helper

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    kept, halves, casts = [], [], []
    for init in graph.initializer:
        size = int(np.prod(init.dims)) if init.dims else 1
        if init.data_type != TensorProto.FLOAT or size < FP16_WEIGHTS_MIN_ELEMENTS:
            kept.append(init)
            continue
        values = numpy_helper.to_array(init)
        if np.abs(values).max(initial=0.0) > np.finfo(np.float16).max:
            raise ExportError(f"weight {init.name} exceeds the float16 range; export it as fp32")
        half = numpy_helper.from_array(values.astype(np.float16), f"{init.name}__fp16")
        halves.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                      name=f"{init.name}__to_fp32"))
    del graph.initializer[:]
    graph.initializer.extend(kept + halves)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    return copy


def topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder graph.node so every node comes after the producers of its inputs (stable otherwise)."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        progressed = False
        rest = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
                progressed = True
            else:
                rest.append(node)
        if not progressed:
            missing = sorted({n for node in rest for n in node.input if n not in available})
            raise ExportError(f"graph has a cycle or undefined inputs: {', '.join(missing[:5])}")
        pending = rest
    copies = [onnx.NodeProto() for _ in ordered]
    for dst, src in zip(copies, ordered):
        dst.CopyFrom(src)
    del graph.node[:]
    graph.node.extend(copies)


class _DropPreprocessAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-process" not in record.getMessage() and "pre-processing" not in record.getMessage()


@contextlib.contextmanager
def _without_preprocess_advice() -> Iterator[None]:
    """quantize_static logs (to the root logger) advice to run onnxruntime's pre-processing, i.e. shape
    inference and graph fusions; the exported graph already has its shapes and its BatchNorms folded."""
    root = logging.getLogger()
    flt = _DropPreprocessAdvice()
    root.addFilter(flt)
    try:
        yield
    finally:
        root.removeFilter(flt)


def to_int8(
    model: onnx.ModelProto,
    calibration: Sequence[np.ndarray],
    *,
    input_name: str = "L",
    op_types: Sequence[str] = ("Conv",),
) -> onnx.ModelProto:
    """Static QDQ quantization calibrated on `calibration` (a sequence of L batches, (N, 1, H, W) float32)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if not calibration:
        raise ExportError("int8 quantization needs at least one calibration batch")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {input_name: batch}

    with tempfile.TemporaryDirectory(prefix="labcolor-int8-") as tmp, _without_preprocess_advice():
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, src)
        try:
            quantize_static(
                src,
                dst,
                Reader(),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(op_types),
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                reduce_range=True,  # 7-bit weights: no int16 saturation in u8s8 kernels without VNNI (see above)
                calibrate_method=CalibrationMethod.MinMax,
                # The calibrator writes an augmented copy of the model; keep it in our temp folder.
                extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
            )
        except Exception as exc:  # onnxruntime.quantization raises bare exceptions
            raise ExportError(f"int8 quantization failed: {exc}") from exc
        return onnx.load(dst)
