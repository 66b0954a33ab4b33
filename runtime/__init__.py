"""labcolor runtime: Lab colorization with onnxruntime, numpy and OpenCV only (never torch).

Public API (imported lazily, so `import runtime` stays cheap and the CLI's --help stays fast)::

    from runtime import Colorizer
    colorizer = Colorizer()            # packaged default model; Colorizer("model.onnx", device="cpu")
    rgb = colorizer.colorize(gray)     # numpy in, numpy out
    for result in colorizer.colorize_folder("photos"):   # -> photos_colorized/
        ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Colorizer": "runtime.colorizer",
    "default_model_path": "runtime.colorizer",
    "FileResult": "runtime.results",
    "Summary": "runtime.results",
    "ColorizeError": "runtime.errors",
    "DeviceError": "runtime.errors",
    "ImageError": "runtime.errors",
    "ModelError": "runtime.errors",
    "OutputError": "runtime.errors",
    "MetadataError": "runtime.metadata",
    "ModelMetadata": "runtime.metadata",
}
__all__ = [  # noqa: RUF022 - grouped like _EXPORTS
    "Colorizer", "default_model_path", "FileResult", "Summary", "ColorizeError", "DeviceError", "ImageError",
    "ModelError", "OutputError", "MetadataError", "ModelMetadata",
]

if TYPE_CHECKING:
    from runtime.colorizer import Colorizer, default_model_path
    from runtime.errors import ColorizeError, DeviceError, ImageError, ModelError, OutputError
    from runtime.metadata import MetadataError, ModelMetadata
    from runtime.results import FileResult, Summary


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runtime' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
