"""One self-contained ONNX graph: uint8 RGB picture in, colorized uint8 RGB picture out.

An app in any language with an ONNX runtime colorizes with this file alone, no Lab maths of
its own. The graph wraps a labcolor model (its L -> ab generator, weights as stored) in
standard ONNX operators that do what `runtime/` does in Python:

    image uint8 [H, W, 3] RGB, saturation float32 [1]
      -> working copy: the longer side clamped to [train_size, inference_size] (preprocess.working_shape),
         resized as 8-bit pixels (OpenCV's INTER_AREA when shrinking, as two matrix products of
         pixel-overlap weights; cubic a=-0.75 when enlarging = INTER_CUBIC), its L (OpenCV's float Lab)
      -> normalised, reflect-padded (REFLECT_101, by index so any pad size works) to the size multiple
      -> the generator -> crop -> ab in Lab units -> bilinear (half-pixel) upsampling to H x W
      -> colour strength: chroma x saturation; above 1 gamut-safe (bisection of the factor per pixel,
         as core.color.scale_chroma, inside an If so strengths <= 1 pay nothing)
      -> merged with the full-resolution L of the input -> sRGB, rounded -> colorized uint8 [H, W, 3]

The same function of the picture as `Colorizer.colorize`, up to the approximations OpenCV makes:
its float Lab path interpolates gamma and cube-root tables, up to 0.18 L units off the exact CIE
formulas used here (in dark tones), and the network passes such differences on to its colours.
`export_rgb` measures the difference on generated and real pictures and refuses a graph over
the bound (RGB_BOUND_MEAN, RGB_BOUND_P999).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from labcolor.core.metadata import METADATA_KEY, RGB_METADATA_KEY, ModelMetadata
from labcolor.export import ExportError

log = logging.getLogger(__name__)

IMAGE, SATURATION, OUTPUT = "image", "saturation", "colorized"
OPSET = 18  # Resize with antialias
# The bound the graph must meet against the Python runtime (levels of 8-bit RGB).
RGB_BOUND_MEAN = 1.0
RGB_BOUND_P999 = 3.0  # 99.9% of values within this many levels

# OpenCV's float Lab conversion (D65, sRGB companding): matrices and thresholds as in its color_lab.cpp.
_RGB2XYZ = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169],
                     [0.019334, 0.119193, 0.950227]], np.float32)
_XYZ2RGB = np.array([[3.240479, -1.53715, -0.498535], [-0.969256, 1.875991, 0.041556],
                     [0.055648, -0.204043, 1.057311]], np.float32)
_WHITE = np.array([0.950456, 1.0, 1.088754], np.float32)
_CHROMA_STEPS = 7  # as core.color._CHROMA_STEPS
_GAMUT_TOLERANCE = 1.0  # as core.color.GAMUT_TOLERANCE


class _Graph:
    """A small node emitter: constants and nodes get unique names; `op` returns the output name."""

    def __init__(self, prefix: str = "") -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.prefix, self.count = prefix, 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}{hint}_{self.count}"

    def const(self, value: float | Sequence | np.ndarray, dtype: type = np.float32) -> str:
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, kind: str, *inputs: str, out: str | None = None, **attrs: object) -> str:
        out = out or self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, list(inputs), [out], name=self.name(f"n_{kind}"), **attrs))
        return out

    # -- arithmetic shorthands on float tensors
    def mul(self, x: str, k: float | str) -> str:
        return self.op("Mul", x, k if isinstance(k, str) else self.const(k))

    def add(self, x: str, k: float | str) -> str:
        return self.op("Add", x, k if isinstance(k, str) else self.const(k))

    def where(self, cond: str, a: str, b: str) -> str:
        return self.op("Where", cond, a, b)

    def greater(self, x: str, k: float) -> str:
        return self.op("Greater", x, self.const(k))

    def channel(self, x: str, i: int) -> str:
        """(..., 3) -> (...,) channel i."""
        return self.op("Gather", x, self.const(i, np.int64), axis=-1)

    def matmul3(self, x: str, m: np.ndarray) -> str:
        """(..., 3) @ m.T: a per-pixel 3x3 colour matrix."""
        return self.op("MatMul", x, self.const(m.T.copy()))

    # -- OpenCV's float Lab formulas
    def srgb_to_linear(self, c: str) -> str:
        low = self.mul(c, 1 / 12.92)
        high = self.op("Pow", self.mul(self.add(c, 0.055), 1 / 1.055), self.const(2.4))
        return self.where(self.op("LessOrEqual", c, self.const(0.04045)), low, high)

    def linear_to_srgb(self, c: str) -> str:
        low = self.mul(c, 12.92)
        safe = self.op("Max", c, self.const(0.0))
        high = self.add(self.mul(self.op("Pow", safe, self.const(1 / 2.4)), 1.055), -0.055)
        return self.where(self.op("LessOrEqual", c, self.const(0.0031308)), low, high)

    def f_lab(self, t: str) -> str:
        cube = self.op("Pow", self.op("Max", t, self.const(0.0)), self.const(1 / 3))
        return self.where(self.greater(t, 0.008856), cube, self.add(self.mul(t, 7.787), 16 / 116))

    def rgb01_to_lab(self, rgb: str) -> tuple[str, str, str]:
        """(..., 3) RGB in [0, 1] -> L, a, b (...)."""
        xyz = self.op("Div", self.matmul3(self.srgb_to_linear(rgb), _RGB2XYZ), self.const(_WHITE))
        fx, fy, fz = (self.f_lab(self.channel(xyz, i)) for i in range(3))
        y = self.channel(xyz, 1)
        l_val = self.where(self.greater(y, 0.008856), self.add(self.mul(fy, 116.0), -16.0), self.mul(y, 903.3))
        a = self.mul(self.op("Sub", fx, fy), 500.0)
        b = self.mul(self.op("Sub", fy, fz), 200.0)
        return l_val, a, b

    def lab_to_rgb01(self, l_val: str, a: str, b: str) -> str:
        """L, a, b (...) -> (..., 3) RGB in [0, 1], clipped."""
        big = self.greater(l_val, 8.0)
        fy_big = self.mul(self.add(l_val, 16.0), 1 / 116)
        y_small = self.mul(l_val, 1 / 903.3)
        y = self.where(big, self.op("Mul", self.op("Mul", fy_big, fy_big), fy_big), y_small)
        fy = self.where(big, fy_big, self.add(self.mul(y_small, 7.787), 16 / 116))
        fx = self.add(fy, self.mul(a, 1 / 500))
        fz = self.op("Sub", fy, self.mul(b, 1 / 200))

        def finv(f: str) -> str:
            cube = self.op("Mul", self.op("Mul", f, f), f)
            return self.where(self.greater(f, 0.206893), cube, self.mul(self.add(f, -16 / 116), 1 / 7.787))

        xyz = [self.mul(finv(fx), float(_WHITE[0])), y, self.mul(finv(fz), float(_WHITE[2]))]
        stacked = self.op("Concat", *(self.op("Unsqueeze", c, self.const([-1], np.int64)) for c in xyz), axis=-1)
        linear = self.matmul3(stacked, _XYZ2RGB)
        return self.op("Clip", self.linear_to_srgb(linear), self.const(0.0), self.const(1.0))

    def in_gamut(self, l_val: str, a: str, b: str) -> str:
        """bool (...): does the colour survive Lab -> sRGB (clipped) -> Lab (core.color._in_gamut)?"""
        l2, a2, b2 = self.rgb01_to_lab(self.lab_to_rgb01(l_val, a, b))
        diffs = [self.op("Abs", self.op("Sub", p, q)) for p, q in ((l_val, l2), (a, a2), (b, b2))]
        worst = self.op("Max", *diffs)
        return self.op("Less", worst, self.const(_GAMUT_TOLERANCE))


def _reflect_index(g: _Graph, size: str, padded: str) -> str:
    """int64 indices [padded] into a dimension of `size` entries, REFLECT_101 beyond its end (any pad)."""
    i = g.op("Range", g.const(0, np.int64), padded, g.const(1, np.int64))
    period = g.op("Max", g.op("Mul", g.op("Sub", size, g.const(1, np.int64)), g.const(2, np.int64)),
                  g.const(1, np.int64))
    j = g.op("Mod", i, period)
    mirrored = g.op("Sub", period, j)
    idx = g.where(g.op("Less", j, size), j, mirrored)
    return g.op("Min", idx, g.op("Sub", size, g.const(1, np.int64)))  # size 1: period 1, index 0


def _area_matrix(g: _Graph, size: str, small: str) -> str:
    """float [small, size]: OpenCV's INTER_AREA shrink of one dimension as a matrix. Output pixel i averages
    the source interval [i * r, (i + 1) * r), r = size / small, each source pixel weighted by its overlap."""
    ratio = g.op("Div", g.op("Cast", size, to=TensorProto.FLOAT), g.op("Cast", small, to=TensorProto.FLOAT))
    i = g.op("Cast", g.op("Range", g.const(0, np.int64), small, g.const(1, np.int64)), to=TensorProto.FLOAT)
    k = g.op("Cast", g.op("Range", g.const(0, np.int64), size, g.const(1, np.int64)), to=TensorProto.FLOAT)
    start = g.op("Unsqueeze", g.op("Mul", i, ratio), g.const([1], np.int64))  # [small, 1]
    end = g.op("Unsqueeze", g.op("Mul", g.add(i, 1.0), ratio), g.const([1], np.int64))
    k0 = g.op("Unsqueeze", k, g.const([0], np.int64))  # [1, size]
    overlap = g.op("Sub", g.op("Min", g.add(k0, 1.0), end), g.op("Max", k0, start))
    return g.op("Div", g.op("Max", overlap, g.const(0.0)), ratio)


def build_rgb_graph(source: onnx.ModelProto, meta: ModelMetadata, *, size: int | None = None) -> onnx.ModelProto:
    """The RGB graph around `source` (a labcolor L -> ab model), working size `size` (default: the model's)."""
    size = size or meta.inference_size
    m, train = meta.size_multiple, meta.train_size
    sc = meta.scaling
    g = _Graph("rgb/")

    # ---- shapes: H, W and the working shape (h, w) = working_shape(H, W, size, train_size)
    shape = g.op("Shape", IMAGE)
    hw = g.op("Slice", shape, g.const([0], np.int64), g.const([2], np.int64))  # [H, W]
    hw_f = g.op("Cast", hw, to=TensorProto.FLOAT)
    longer = g.op("ReduceMax", hw_f, keepdims=1)
    target = g.op("Min", g.const([float(size)]), g.op("Max", longer, g.const([float(train)])))
    scale = g.op("Div", target, longer)
    small_hw = g.op("Max", g.op("Cast", g.op("Round", g.op("Mul", hw_f, scale)), to=TensorProto.INT64),
                    g.const([1, 1], np.int64))
    padded_hw = g.op("Mul", g.op("Div", g.op("Add", small_hw, g.const([m - 1, m - 1], np.int64)),
                                 g.const([m, m], np.int64)), g.const([m, m], np.int64))

    # ---- full-resolution L of the input (the output's lightness)
    rgb01 = g.mul(g.op("Cast", IMAGE, to=TensorProto.FLOAT), 1 / 255)  # [H, W, 3]
    l_full, _, _ = g.rgb01_to_lab(rgb01)  # [H, W]

    # ---- the working copy: resized as 8-bit pixels, then its L
    chw = g.op("Unsqueeze", g.op("Transpose", g.op("Cast", IMAGE, to=TensorProto.FLOAT), perm=[2, 0, 1]),
               g.const([0], np.int64))  # [1, 3, H, W]
    sizes = g.op("Concat", g.const([1, 3], np.int64), small_hw, axis=0)
    big_h, big_w = (g.op("Squeeze", g.op("Slice", hw, g.const([k], np.int64), g.const([k + 1], np.int64)))
                    for k in (0, 1))
    small_h, small_w = (g.op("Squeeze", g.op("Slice", small_hw, g.const([k], np.int64), g.const([k + 1], np.int64)))
                        for k in (0, 1))
    # INTER_AREA exactly, as two matrix products: [h, H] @ [1, 3, H, W] @ [W, w]
    rows_m, cols_m = _area_matrix(g, big_h, small_h), _area_matrix(g, big_w, small_w)
    shrink = g.op("MatMul", g.op("MatMul", rows_m, chw), g.op("Transpose", cols_m, perm=[1, 0]))
    enlarge = g.op("Resize", chw, "", "", sizes, mode="cubic", cubic_coeff_a=-0.75,
                   coordinate_transformation_mode="half_pixel")
    shrinking = g.op("Less", g.op("ReduceMin", g.op("Sub", small_hw, hw), keepdims=0), g.const(0, np.int64))
    resized = g.where(shrinking, shrink, enlarge)
    pixels8 = g.op("Clip", g.op("Round", resized), g.const(0.0), g.const(255.0))  # what cv2.resize on uint8 gives
    small_rgb = g.mul(g.op("Transpose", g.op("Squeeze", pixels8, g.const([0], np.int64)), perm=[1, 2, 0]), 1 / 255)
    l_small, _, _ = g.rgb01_to_lab(small_rgb)  # [h, w]
    l_n = g.mul(g.add(l_small, -sc.l_center), 1 / sc.l_scale)

    # ---- reflect-pad to the size multiple (by index: works for pads longer than the picture)
    h, w = (g.op("Slice", small_hw, g.const([k], np.int64), g.const([k + 1], np.int64)) for k in (0, 1))
    ph, pw = (g.op("Slice", padded_hw, g.const([k], np.int64), g.const([k + 1], np.int64)) for k in (0, 1))
    rows = _reflect_index(g, g.op("Squeeze", h), g.op("Squeeze", ph))
    cols = _reflect_index(g, g.op("Squeeze", w), g.op("Squeeze", pw))
    net_in = g.op("Gather", g.op("Gather", l_n, rows, axis=0), cols, axis=1)
    net_in = g.op("Unsqueeze", net_in, g.const([0, 1], np.int64), out="rgb/L")  # [1, 1, ph, pw]

    # ---- the generator, its names prefixed, fed rgb/L
    gen = onnx.compose.add_prefix(source, prefix="gen/")
    gen_in, gen_out = gen.graph.input[0].name, gen.graph.output[0].name
    g.nodes.append(helper.make_node("Identity", ["rgb/L"], [gen_in], name="rgb/feed_generator"))
    g.nodes.extend(gen.graph.node)
    g.inits.extend(gen.graph.initializer)

    # ---- crop, Lab units, upsample to H x W
    ab = g.op("Slice", gen_out, g.const([0, 0], np.int64), small_hw, g.const([2, 3], np.int64))  # [1, 2, h, w]
    ab = g.mul(ab, sc.ab_scale)
    full_sizes = g.op("Concat", g.const([1, 2], np.int64), hw, axis=0)
    ab_up = g.op("Resize", ab, "", "", full_sizes, mode="linear", coordinate_transformation_mode="half_pixel")
    a = g.op("Squeeze", g.op("Gather", ab_up, g.const(0, np.int64), axis=1), g.const([0], np.int64))  # [H, W]
    b = g.op("Squeeze", g.op("Gather", ab_up, g.const(1, np.int64), axis=1), g.const([0], np.int64))

    # ---- colour strength: <= 1 a plain factor; above 1 the largest factor in [1, s] that stays in gamut
    s = g.op("Squeeze", SATURATION, g.const([0], np.int64))  # scalar
    plain_a, plain_b = g.op("Mul", a, s), g.op("Mul", b, s)
    boost = _Graph("rgb/boost/")
    boost.count = g.count
    lo = boost.op("Expand", boost.const(1.0), boost.op("Shape", a))
    hi = boost.op("Expand", s, boost.op("Shape", a))
    boosted_ok = boost.in_gamut(l_full, plain_a, plain_b)
    for _ in range(_CHROMA_STEPS):
        mid = boost.mul(boost.op("Add", lo, hi), 0.5)
        inside = boost.in_gamut(l_full, boost.op("Mul", a, mid), boost.op("Mul", b, mid))
        lo, hi = boost.where(inside, mid, lo), boost.where(inside, hi, mid)
    # Pixels inside at the full factor keep it; a pixel already outside at factor 1 keeps the model's colour.
    factor = boost.where(boosted_ok, boost.op("Expand", s, boost.op("Shape", a)), lo)
    boost.op("Mul", a, factor, out="rgb/boost/a")
    boost.op("Mul", b, factor, out="rgb/boost/b")
    g.count = boost.count
    keep = _Graph("rgb/keep/")
    keep.op("Identity", plain_a, out="rgb/keep/a")
    keep.op("Identity", plain_b, out="rgb/keep/b")

    def branch(sub: _Graph, name: str) -> onnx.GraphProto:
        outs = [helper.make_tensor_value_info(f"{sub.prefix}{c}", TensorProto.FLOAT, None) for c in ("a", "b")]
        return helper.make_graph(sub.nodes, name, [], outs, initializer=sub.inits)

    g.nodes.append(helper.make_node("If", [g.greater(s, 1.0)], ["rgb/a", "rgb/b"], name="rgb/strength",
                                    then_branch=branch(boost, "boost"), else_branch=branch(keep, "plain")))

    # ---- merge with the full-resolution L, back to 8-bit sRGB
    rgb = g.lab_to_rgb01(l_full, "rgb/a", "rgb/b")  # [H, W, 3] in [0, 1]
    out = g.op("Round", g.mul(rgb, 255.0))
    g.op("Cast", out, to=TensorProto.UINT8, out=OUTPUT)

    graph = helper.make_graph(
        g.nodes, "labcolor_rgb",
        [helper.make_tensor_value_info(IMAGE, TensorProto.UINT8, ["H", "W", 3]),
         helper.make_tensor_value_info(SATURATION, TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.UINT8, ["H", "W", 3])],
        initializer=g.inits,
    )
    opsets = {o.domain: o.version for o in source.opset_import}
    opsets[""] = max(opsets.get("", OPSET), OPSET)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()])
    model.ir_version = source.ir_version
    description = {
        "kind": "rgb",
        "input": {"name": IMAGE, "dtype": "uint8", "shape": ["H", "W", 3], "channels": "RGB"},
        "strength": {"name": SATURATION, "dtype": "float32", "shape": [1], "default": meta.saturation,
                     "meaning": "0 gray, 1 the network's own colours, above 1 stronger (gamut-safe)"},
        "output": {"name": OUTPUT, "dtype": "uint8", "shape": ["H", "W", 3], "channels": "RGB"},
        "working_size": size, "train_size": train, "size_multiple": m,
        "model": json.loads(meta.to_json()),  # the wrapped L -> ab model's own description
    }
    helper.set_model_props(model, {RGB_METADATA_KEY: json.dumps(description)})
    model.producer_name = "labcolor"
    model.doc_string = ("labcolor colorizer, self-contained: uint8 RGB [H, W, 3] + saturation [1] -> colorized "
                        "uint8 RGB [H, W, 3]. See the 'labcolor-rgb' metadata entry.")
    return model


@dataclass
class RgbReport:
    path: Path
    file_bytes: int
    pictures: int
    mean_abs: float  # mean |difference| from the Python runtime, levels
    p999: float  # 99.9th percentile of |difference|, levels
    max_abs: int

    def lines(self) -> list[str]:
        return [
            f"wrote {self.path} ({self.file_bytes / 1e6:.2f} MB, RGB in -> RGB out, opset {OPSET})",
            (f"verified against the Python runtime on {self.pictures} pictures: mean |d| {self.mean_abs:.3f} levels, "
            f"99.9% within {self.p999:.0f}, max {self.max_abs} (bound: mean <= {RGB_BOUND_MEAN:g}, "
            f"99.9% within {RGB_BOUND_P999:g})"),
        ]


def verification_pictures(photos: Path | None = None, count: int = 4) -> list[np.ndarray]:
    """RGB uint8 pictures to verify with: generated ones of several sizes and aspect ratios (below, inside and
    above the working size; gray and colour), plus up to `count` real photos from `photos`."""
    rng = np.random.default_rng(7)
    pictures = []
    for h, w in ((37, 53), (96, 64), (180, 240), (300, 160), (423, 640)):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        planes = [127 + 100 * np.sin(xx / w * rng.uniform(2, 7) + k) * np.cos(yy / h * rng.uniform(2, 7) - k)
                  for k in range(3)]
        pic = np.clip(np.stack(planes, -1) + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8)
        pictures.append(pic)
    pictures.append(np.repeat(pictures[2][:, :, :1], 3, axis=2))  # a gray picture as three equal channels
    if photos is not None:
        from labcolor.core import imageio
        from labcolor.runtime.jobs import walk_pictures

        for path in list(walk_pictures(photos))[:count]:
            bgr = imageio.color8(imageio.read(path))
            if bgr is not None:
                pictures.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    return pictures


def compare(model_bytes: bytes, source: Path, pictures: Sequence[np.ndarray],
            saturations: Sequence[float] = (1.0,)) -> tuple[float, float, int]:
    """(mean |d|, 99.9th percentile, max) in levels between the RGB graph and `Colorizer(source).colorize`."""
    from labcolor.runtime import Colorizer
    from labcolor.runtime.session import CPU, open_session

    session = open_session(model_bytes, [CPU])
    colorizer = Colorizer(source, device="cpu")
    diffs = []
    for s in saturations:
        for pic in pictures:
            (got,) = session.run([OUTPUT], {IMAGE: pic, SATURATION: np.array([s], np.float32)})
            want = colorizer.colorize(pic, saturation=s)
            diffs.append(np.abs(got.astype(np.int16) - want.astype(np.int16)).ravel())
    d = np.concatenate(diffs)
    return float(d.mean()), float(np.percentile(d, 99.9)), int(d.max())


def export_rgb(source: Path, out: Path, *, size: int | None = None, photos: Path | None = None,
               force: bool = False) -> RgbReport:
    """A labcolor .onnx model -> its self-contained RGB graph at `out`, verified against the Python runtime
    (generated pictures, plus real ones from `photos`) and refused (ExportError) over the bound unless `force`."""
    from labcolor.core.imageio import write_atomic
    from labcolor.export.checks import check_graph

    source = Path(source)
    try:
        proto = onnx.load(str(source))
    except Exception as exc:  # protobuf raises several types for a file that is not a model
        raise ExportError(f"{source}: not an ONNX model ({exc})") from exc
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise ExportError(f"{source}: not a labcolor model (no '{METADATA_KEY}' metadata); export one first")
    meta = ModelMetadata.from_props(props, source=str(source))
    model = build_rgb_graph(proto, meta, size=size)
    data = model.SerializeToString()
    check_graph(data, "the RGB graph")
    pictures = verification_pictures(photos)
    mean_abs, p999, max_abs = compare(data, source, pictures, saturations=(meta.saturation, 0.0, 1.5))
    report = RgbReport(Path(out), len(data), len(pictures), mean_abs, p999, max_abs)
    if (mean_abs > RGB_BOUND_MEAN or p999 > RGB_BOUND_P999) and not force:
        raise ExportError(f"the RGB graph differs from the Python runtime beyond the bound: {report.lines()[1]}")
    write_atomic(Path(out), data, fsync=True)
    return report
