"""labcolor runtime: Lab colorization with onnxruntime, numpy and OpenCV only (never torch).

Public API (imported lazily, so `import runtime` stays cheap and the CLI's --help stays fast)::

    from labcolor.runtime import Colorizer
    colorizer = Colorizer()            # packaged default model; Colorizer("model.onnx", device="cpu")
    rgb = colorizer.colorize(gray)     # numpy in, numpy out
    for result in colorizer.colorize_folder("photos"):   # -> photos_colorized/
        ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Colorizer": "labcolor.runtime.colorizer",
    "default_model_path": "labcolor.runtime.colorizer",
    "FileResult": "labcolor.runtime.results",
    "Summary": "labcolor.runtime.results",
    "LabcolorError": "labcolor.core.errors",
    "DeviceError": "labcolor.core.errors",
    "ImageError": "labcolor.core.errors",
    "ModelError": "labcolor.core.errors",
    "ModelOutputError": "labcolor.core.errors",
    "OutputError": "labcolor.core.errors",
    "MetadataError": "labcolor.core.metadata",
    "ModelMetadata": "labcolor.core.metadata",
}
__all__ = [  # noqa: RUF022 - grouped like _EXPORTS
    "Colorizer", "default_model_path", "FileResult", "Summary", "LabcolorError", "DeviceError", "ImageError",
    "ModelError", "ModelOutputError", "OutputError", "MetadataError", "ModelMetadata",
]

if TYPE_CHECKING:
    from labcolor.runtime.colorizer import Colorizer, default_model_path
    from labcolor.core.errors import DeviceError, ImageError, LabcolorError, ModelError, ModelOutputError, OutputError
    from labcolor.core.metadata import MetadataError, ModelMetadata
    from labcolor.runtime.results import FileResult, Summary


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runtime' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
