"""labcolor runtime: Lab colorization with onnxruntime, numpy and OpenCV only (never torch)."""

__version__ = "0.1.0"
