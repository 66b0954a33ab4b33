"""What an exported model says about itself: the labcolor metadata (core.metadata), and writing it.

The runtime reads this instead of guessing: tensor names and scaling, size multiple, working size,
training crop size, the colour strength the model is meant for, where it came from and what the
exporter's checks measured. `build_metadata` makes it from the checkpoint and those measurements;
`describe` puts it on the finished model proto, once, just before its bytes are checked and written.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import onnx
import torch

from labcolor import __version__ as labcolor_version
from labcolor.core import color
from labcolor.core.metadata import METADATA_KEY, ModelMetadata
from labcolor.export import ExportError
from labcolor.export.deploy import INPUT_NAME, OUTPUT_NAME
from labcolor.runtime.preprocess import round_up

if TYPE_CHECKING:
    from labcolor.export.verify import ParityReport


def default_inference_size(train_size: int, size_multiple: int) -> int:
    """A working size for photos: at least 256 px and the training size, rounded up to the size multiple."""
    return round_up(max(256, train_size), size_multiple)


def _json_safe(value: Any) -> Any:
    """NaN/inf -> None, tuples -> lists: metadata must be strict JSON that every language's parser reads."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def build_metadata(
    ckpt: dict[str, Any],
    *,
    inference_size: int,
    precision: str,
    opset: int,
    parity: ParityReport,
    fp32_parity: ParityReport | None = None,
    float_levels: int | None = None,
    saturation: float = 1.0,
) -> ModelMetadata:
    """The model's whole self-description: the checkpoint's facts and what the export measured.

    parity: the written model vs PyTorch; fp32_parity: for fp16/int8, the fp32 graph they were made
    from; float_levels: for int8, the outermost decoder levels kept in float; saturation: the colour
    strength the model is meant to be used at (chosen on validation pictures; the runtime's default).
    """
    cfg = ckpt["config"]
    spec = ckpt["generator"]["spec"]
    size_multiple = 2 ** int(spec["depth"])
    metrics = ckpt.get("metrics") or {}
    disc = ckpt.get("discriminator")
    training = {
        "dataset": ckpt.get("data"),
        "epochs": ckpt.get("epoch"),
        "epochs_planned": cfg.get("epochs"),
        "steps": ckpt.get("step"),
        # The epoch with the lowest validation ΔE00 up to this checkpoint; equal to "epochs" for a best.pt,
        # which is how a reader tells a model picked on validation from the last epoch of its run.
        "best": ckpt.get("best"),
        "losses": {
            "gan_loss": cfg.get("gan_loss"),
            "adv_weight": cfg.get("adv_weight"),
            "l1_weight": cfg.get("l1_weight"),
            "real_label": cfg.get("real_label"),
            "adversarial": bool(cfg.get("adv_weight", 0) > 0),
        },
        "config": cfg,
        "metrics": metrics,
        "generator": spec,
        "discriminator": disc["spec"] if disc else None,
        "trained_at": metrics.get("time"),
        # Set by `colorize recalibrate` (trainer.recalibrate): BatchNorm statistics re-estimated after training.
        "bn_recalibration": ckpt.get("bn_recalibration"),
        "trained_with_labcolor": ckpt.get("labcolor_version"),
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "labcolor_version": labcolor_version,
        "exporter": {
            "torch": torch.__version__.split("+")[0],
            "onnx": onnx.__version__,
            "onnxruntime": _onnxruntime_version(),
            "opset": opset,
            "verification": {
                "reference": "PyTorch fp32 generator from the checkpoint (eval mode)",
                "model": _figures(parity),
                "fp32_graph": _figures(fp32_parity) if fp32_parity is not None else None,
            },
        },
    }
    if float_levels is not None:
        training["exporter"]["int8_float_decoder_levels"] = float_levels
    return ModelMetadata(
        size_multiple=size_multiple,
        train_size=int(cfg["size"]),
        inference_size=int(inference_size),
        precision=precision,
        saturation=float(saturation),
        training=_json_safe(training),
    )


def _figures(report: ParityReport) -> dict[str, Any]:
    """A parity report as metadata: what was compared, on which inputs, and the differences in Lab units."""
    return {
        "candidate": report.candidate,
        "inputs": sorted({c.inputs for c in report.cases}),
        "shapes": sorted({(c.batch, c.height, c.width) for c in report.cases}),
        "max_abs_ab": report.max_abs * color.AB_SCALE,
        "mean_abs_ab": report.mean_abs * color.AB_SCALE,
        "p99_abs_ab": report.p99_abs * color.AB_SCALE,
    }


def _onnxruntime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def describe(model: onnx.ModelProto, metadata: ModelMetadata) -> bytes:
    """Put `metadata` on the finished `model` (in place) and return the bytes to check and write.

    The one place an export sets metadata: one labcolor JSON entry in metadata_props, the producer
    and a human-readable doc string. Called once per written model, after conversion and checks;
    a model that already carries a labcolor entry means it was called twice, which is a bug.
    """
    if any(p.key == METADATA_KEY for p in model.metadata_props):
        raise ExportError(f"internal error: the model already has '{METADATA_KEY}' metadata")
    onnx.helper.set_model_props(model, {METADATA_KEY: metadata.to_json()})  # replaces all props: ours is the one
    model.producer_name = "labcolor"
    model.producer_version = labcolor_version
    model.doc_string = (
        f"labcolor colorization generator ({metadata.precision}): input {INPUT_NAME} (N, 1, H, W) float32 = "
        f"(L - {metadata.scaling.l_center}) / {metadata.scaling.l_scale}; output {OUTPUT_NAME} (N, 2, H, W) float32 "
        f"= ab / {metadata.scaling.ab_scale}; H, W multiples of {metadata.size_multiple}. "
        f"Full description: metadata_props['{METADATA_KEY}']."
    )
    return model.SerializeToString()
