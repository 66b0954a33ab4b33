"""The structural check every written graph passes (onnx only, no torch: the RGB export of an existing
model runs without PyTorch)."""

from __future__ import annotations

import onnx

from labcolor.export import ExportError


def check_graph(model: onnx.ModelProto | bytes, what: str) -> None:
    """onnx.checker full check (structure, types, shape inference); ExportError if it fails."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"{what} failed onnx.checker: {exc}") from exc
