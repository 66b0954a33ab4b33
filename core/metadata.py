"""The self-description every labcolor ONNX model carries, and its validation.

The exporter writes one JSON string under the key ``labcolor`` in the model's
``metadata_props``; the runtime reads it (onnxruntime exposes it as
``session.get_modelmeta().custom_metadata_map``) and never guesses the contract from
tensor shapes. Apps in other languages read the same JSON with their ONNX runtime.

Schema version 1 (all keys required unless marked optional)::

    {
      "schema_version": 1,
      "input":  {"name": "L",  "layout": "NCHW", "channels": 1, "dtype": "float32"},
      "output": {"name": "ab", "layout": "NCHW", "channels": 2, "dtype": "float32"},
      "color_space": "CIELAB-D65-sRGB-opencv-float32",
      "scaling": {"l_center": 50.0, "l_scale": 50.0, "ab_scale": 110.0},
          # input  = (L - l_center) / l_scale          with L in [0, 100]
          # output = ab / ab_scale, so ab = output * ab_scale
      "size_multiple": 32,      # H and W fed to the model must be multiples of this
      "train_size": 128,        # crop size the model was trained at
      "inference_size": 256,    # recommended working size (longer side, before padding)
      "precision": "fp32",      # fp32 | fp16-weights | fp16 | int8 (inputs/outputs stay float32 in all)
      "training": {...}         # free-form: dataset, epochs, steps, losses, config, metrics, date, version
    }
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from labcolor.core.color import COLOR_SPACE, LabScaling
from labcolor.core.errors import ModelError

METADATA_KEY = "labcolor"
# A self-contained RGB graph (`colorize export --rgb`) carries its description under this key instead:
# its inputs/outputs (uint8 RGB), working size, and under "model" the wrapped L -> ab model's own metadata.
RGB_METADATA_KEY = "labcolor-rgb"
SCHEMA_VERSION = 1
PRECISIONS = ("fp32", "fp16-weights", "fp16", "int8")
MAX_SATURATION = 4.0  # far beyond any useful boost; a guard against typos such as 15 for 1.5


class MetadataError(ModelError):
    """A model's labcolor metadata is missing, malformed, or describes a contract this runtime does not know."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    channels: int
    layout: str = "NCHW"
    dtype: str = "float32"


@dataclass(frozen=True)
class ModelMetadata:
    size_multiple: int
    train_size: int
    inference_size: int
    input: TensorSpec = TensorSpec("L", 1)
    output: TensorSpec = TensorSpec("ab", 2)
    color_space: str = COLOR_SPACE
    scaling: LabScaling = LabScaling()
    precision: str = "fp32"
    # The colour strength the model is meant to be used at (1 = its own output; chosen on validation
    # pictures and recorded at export). Absent in older files: 1.
    saturation: float = 1.0
    training: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        problems = []
        if self.schema_version != SCHEMA_VERSION:
            problems.append(f"schema_version {self.schema_version} (this runtime reads {SCHEMA_VERSION})")
        if self.color_space != COLOR_SPACE:
            problems.append(f"colour space {self.color_space!r} (this runtime implements {COLOR_SPACE!r})")
        for what, value in (("size_multiple", self.size_multiple), ("train_size", self.train_size),
                            ("inference_size", self.inference_size)):
            if not isinstance(value, int) or value <= 0:
                problems.append(f"{what} must be a positive integer, got {value!r}")
        if not isinstance(self.saturation, (int, float)) or not 0 <= self.saturation <= MAX_SATURATION:
            problems.append(f"saturation must be a number in 0..{MAX_SATURATION}, got {self.saturation!r}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision {self.precision!r} (expected one of {', '.join(PRECISIONS)})")
        if (self.input.layout, self.input.channels) != ("NCHW", 1):
            problems.append(f"input must be NCHW with 1 channel (L), got {self.input}")
        if (self.output.layout, self.output.channels) != ("NCHW", 2):
            problems.append(f"output must be NCHW with 2 channels (ab), got {self.output}")
        if problems:
            raise MetadataError("unsupported labcolor metadata: " + "; ".join(problems))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, source: str = "model") -> "ModelMetadata":
        """Parse and validate; `source` (a file name) goes into error messages."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MetadataError(f"{source}: labcolor metadata is not valid JSON ({exc})") from exc
        if not isinstance(raw, dict):
            raise MetadataError(f"{source}: labcolor metadata must be a JSON object")
        try:
            return cls(
                schema_version=raw["schema_version"],
                input=TensorSpec(**raw["input"]),
                output=TensorSpec(**raw["output"]),
                color_space=raw["color_space"],
                scaling=LabScaling(**raw["scaling"]),
                size_multiple=raw["size_multiple"],
                train_size=raw["train_size"],
                inference_size=raw["inference_size"],
                precision=raw["precision"],
                saturation=raw.get("saturation", 1.0),
                training=raw.get("training", {}),
            )
        except (KeyError, TypeError) as exc:
            raise MetadataError(f"{source}: labcolor metadata is missing or has a malformed field ({exc})") from exc
        except MetadataError as exc:
            raise MetadataError(f"{source}: {exc}") from exc

    @classmethod
    def from_props(cls, props: dict[str, str], *, source: str = "model") -> "ModelMetadata":
        """From an ONNX metadata_props / onnxruntime custom_metadata_map dictionary."""
        if METADATA_KEY not in props:
            raise MetadataError(
                f"{source}: no '{METADATA_KEY}' metadata; this ONNX file was not written by `colorize export`"
            )
        return cls.from_json(props[METADATA_KEY], source=source)
