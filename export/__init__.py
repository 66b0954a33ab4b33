"""labcolor exporter: generator checkpoint -> verified, self-describing ONNX.

Modules (import the one you need; this package itself imports nothing heavy, so
`colorize --help` can show the defaults below without PyTorch):

* ``export.exporter`` export_generator(): checkpoint -> checked .onnx, written atomically (needs torch, onnx)
* ``export.deploy``   the generator as deployed: exactly-equivalent rewrites, the int8 float-level plan,
  and its tidy ONNX graph
* ``export.describe`` the model's metadata (checkpoint facts + measured parity), set once on the final model
* ``export.quantize`` fp16 and int8 (static QDQ) conversions of an fp32 ONNX model
* ``export.verify``   parity checks and the test inputs they use (random and photo-like)

Inspecting an exported file (`colorize info`) is the runtime's job: ``labcolor.runtime.info``.
"""

from labcolor.core.errors import LabcolorError

# Defaults shared by the library and the CLI (kept here, free of torch, so `colorize --help` can show them).
DEFAULT_OPSET = 18
INT8_MAX_MEAN_AB = 1.0  # refuse int8 above this mean |d ab| vs PyTorch, Lab units (a just-noticeable difference is ~2.3)


class ExportError(LabcolorError, ValueError):
    """The model cannot be exported as asked, or the exported graph failed a check."""
