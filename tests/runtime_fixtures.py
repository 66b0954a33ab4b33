"""Small ONNX models and pictures for the runtime tests, written without the code under test.

Models are built with `onnx.helper` (no torch, no exporter): dynamic N/H/W, the labcolor
metadata entry in `metadata_props`, deterministic weights. Pictures are written with
OpenCV, except the two things OpenCV cannot write: a palette PNG (built chunk by chunk)
and an EXIF orientation tag (an APP1 segment spliced into a JPEG).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from labcolor.core.metadata import METADATA_KEY, ModelMetadata

OPSET = 17


def _finish(nodes: list, inits: list, meta: ModelMetadata, path: Path, name: str) -> Path:
    """Wrap nodes into a model with input L (N,1,H,W) and output ab (N,2,H,W), all dims dynamic."""
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("L", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("ab", TensorProto.FLOAT, ["N", 2, "H", "W"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="labcolor-tests")
    model.ir_version = 8  # readable by every onnxruntime we support
    helper.set_model_props(model, {METADATA_KEY: meta.to_json()})
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name)


def make_tiny_model(
    path: Path, *, size_multiple: int = 8, inference_size: int = 64, train_size: int = 32, seed: int = 0,
    gain: float = 1.0,
) -> Path:
    """L -> Conv3x3/2 (4 ch) -> Relu -> Resize x2 -> Conv3x3 (2 ch) -> Tanh.

    Cheap (well under a millisecond at 64x64) but spatially non-trivial: its output depends on
    the neighbourhood, so padding, cropping and orientation mistakes change the result.
    `gain` scales the weights: with 1 the output swings by ~10 ab units per L unit, far more than a
    trained model; a smaller gain stands in for a trained model's smoothness where that matters.
    """
    rng = np.random.default_rng(seed)
    inits = [
        _init("w1", rng.normal(0, 0.5 * gain, (4, 1, 3, 3))),
        _init("b1", rng.normal(0, 0.1, (4,))),
        _init("w2", rng.normal(0, 0.5 * gain, (2, 4, 3, 3))),
        _init("b2", rng.normal(0, 0.1, (2,))),
        _init("scales", np.array([1, 1, 2, 2])),
    ]
    nodes = [
        helper.make_node("Conv", ["L", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Resize", ["r1", "", "scales"], ["u1"], mode="nearest"),
        helper.make_node("Conv", ["u1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Tanh", ["c2"], ["ab"]),
    ]
    meta = ModelMetadata(size_multiple=size_multiple, train_size=train_size, inference_size=inference_size)
    return _finish(nodes, inits, meta, path, "tiny")


def make_constant_model(path: Path, ab_n: tuple[float, float], *, size_multiple: int = 8,
                        inference_size: int = 64) -> Path:
    """ab = constant (network units) everywhere, whatever L is: the colour the output must show."""
    inits = [_init("zero", np.zeros((1, 2, 1, 1))), _init("bias", np.array(ab_n).reshape(1, 2, 1, 1))]
    nodes = [
        helper.make_node("Mul", ["L", "zero"], ["z"]),  # (N,1,H,W) * (1,2,1,1) -> (N,2,H,W) zeros
        helper.make_node("Add", ["z", "bias"], ["ab"]),
    ]
    meta = ModelMetadata(size_multiple=size_multiple, train_size=32, inference_size=inference_size)
    return _finish(nodes, inits, meta, path, "constant")


def make_unet_model(path: Path, *, depth: int = 5, base: int = 32, max_channels: int = 512,
                    inference_size: int = 256, seed: int = 0) -> Path:
    """The pix2pix U-Net topology of trainer.networks (batch norm folded away) with random weights.

    Down: Conv 4x4/2 (+LeakyReLU before every inner one); up: Relu -> ConvTranspose 4x4/2,
    concatenated with the skip; Tanh at the top. Same FLOPs as a trained model of that shape,
    so it stands in for the shipped model in benchmarks (depth 5, base 32: ~20-40 ms at 256x256).
    """
    rng = np.random.default_rng(seed)
    widths = [min(base * 2**i, max_channels) for i in range(depth)]
    nodes: list = []
    inits: list = []

    def conv(x: str, cin: int, cout: int, name: str, transpose: bool = False) -> str:
        shape = (cin, cout, 4, 4) if transpose else (cout, cin, 4, 4)
        std = 1.0 / np.sqrt(cin * 16)  # keeps activations O(1) through the depth
        inits.append(_init(f"{name}_w", rng.normal(0, std, shape)))
        inits.append(_init(f"{name}_b", np.zeros(cout)))
        op = "ConvTranspose" if transpose else "Conv"
        nodes.append(helper.make_node(op, [x, f"{name}_w", f"{name}_b"], [name], pads=[1, 1, 1, 1], strides=[2, 2]))
        return name

    def act(x: str, kind: str, name: str) -> str:
        if kind == "lrelu":
            nodes.append(helper.make_node("LeakyRelu", [x], [name], alpha=0.2))
        else:
            nodes.append(helper.make_node(kind, [x], [name]))
        return name

    skips = [conv("L", 1, widths[0], "d0")]
    for level in range(1, depth):
        skips.append(conv(act(skips[-1], "lrelu", f"a{level}"), widths[level - 1], widths[level], f"d{level}"))
    x = skips[-1]
    cin = widths[-1]
    for level in range(depth - 1, 0, -1):
        up = conv(act(x, "Relu", f"r{level}"), cin, widths[level - 1], f"u{level}", transpose=True)
        nodes.append(helper.make_node("Concat", [skips[level - 1], up], [f"cat{level}"], axis=1))
        x, cin = f"cat{level}", widths[level - 1] * 2
    out = conv(act(x, "Relu", "r0"), cin, 2, "u0", transpose=True)
    nodes.append(helper.make_node("Tanh", [out], ["ab"]))
    meta = ModelMetadata(size_multiple=2**depth, train_size=128, inference_size=inference_size,
                         training={"note": "random weights: benchmark/test stand-in"})
    return _finish(nodes, inits, meta, path, f"unet{depth}x{base}")


# ----------------------------------------------------------------------------- pictures


def photo(h: int, w: int, seed: int = 0, channels: int = 3, dtype: type = np.uint8) -> np.ndarray:
    """A smooth, structured picture (gradients + blobs), so JPEG keeps it recognisable."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    planes = []
    for c in range(channels):
        fx, fy, phase = rng.uniform(1, 4), rng.uniform(1, 4), rng.uniform(0, 6.3)
        planes.append(0.5 + 0.35 * np.sin(xx / w * fx * 6.28 + phase) * np.cos(yy / h * fy * 6.28) + 0.1 * (xx / w))
    img = np.clip(np.stack(planes, axis=-1), 0, 1)
    peak = 65535 if dtype == np.uint16 else 255
    out = (img * peak + 0.5).astype(dtype)
    return out[..., 0] if channels == 1 else out


def jpeg_with_orientation(image: np.ndarray, orientation: int, quality: int = 95) -> bytes:
    """A JPEG whose EXIF says `orientation` (1..8); the pixels are stored as given."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    # TIFF little-endian header, IFD0 with one entry: Orientation (tag 0x0112, SHORT, count 1).
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    data = buf.tobytes()
    return data[:2] + app1 + data[2:]


def palette_png(indices: np.ndarray, palette: np.ndarray) -> bytes:
    """An 8-bit palette PNG (colour type 3): indices (H, W) uint8, palette (K, 3) RGB uint8."""
    h, w = indices.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + indices[y].astype(np.uint8).tobytes() for y in range(h))  # filter 0 per row
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
        + chunk(b"PLTE", palette.astype(np.uint8).tobytes())
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def write(path: Path, image: np.ndarray, params: list[int] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, image, params or [])
    assert ok, path
    path.write_bytes(buf.tobytes())
    return path
