"""labcolor exporter: generator checkpoint -> verified, self-describing ONNX."""
