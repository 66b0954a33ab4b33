"""labcolor exporter: generator checkpoint -> verified, self-describing ONNX.

Modules (import the one you need; this package itself imports nothing heavy, so
`colorize info` can use `export.info` without PyTorch):

* ``export.onnx``     export_generator(): checkpoint -> checked .onnx (needs torch, onnx)
* ``export.verify``   parity checks and the test inputs they use (random and photo-like)
* ``export.quantize`` fp16 and int8 (static QDQ) conversions of an fp32 ONNX model
* ``export.info``     inspect_model(): what a .onnx file is and where it can run (onnxruntime only)
"""

from labcolor.core.errors import LabcolorError

# Defaults shared by the library and the CLI (kept here, free of torch, so `colorize --help` can show them).
DEFAULT_OPSET = 18
INT8_MAX_MEAN_AB = 1.0  # refuse int8 above this mean |d ab| vs PyTorch, Lab units (a just-noticeable difference is ~2.3)


class ExportError(LabcolorError, ValueError):
    """The model cannot be exported as asked, or the exported graph failed a check."""
