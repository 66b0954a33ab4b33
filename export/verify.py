"""Parity checks of an exported model, and the inputs they run on.

Every figure is the difference between a candidate (onnxruntime, OpenCV DNN, ...) and a
reference (the PyTorch generator in eval mode) on the same L input, in network units of
ab (the generator's tanh output); ``x AB_SCALE`` turns it into Lab units.

Inputs come in two kinds because they catch different bugs: uniform random L in [-1, 1]
drives every unit over its whole range, while photo-like L (smooth regions, edges, mild
noise; either synthesized here or read from a folder of pictures) has the statistics
the model sees in use, which is what quantization error must be judged on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from labcolor.core import color
from labcolor.core.errors import ModelError
from labcolor.core.imageio import INPUT_SUFFIXES
from labcolor.export import ExportError
from labcolor.runtime.jobs import walk_pictures
from labcolor.runtime.preprocess import round_up
from labcolor.runtime.session import CPU, open_session
from labcolor.trainer.data import decode_bgr

log = logging.getLogger(__name__)

Runner = Callable[[np.ndarray], np.ndarray]  # L_n (N, 1, H, W) float32 -> ab_n (N, 2, H, W) float32


# ------------------------------------------------------------------------------ inputs


def synthetic_photos(count: int, height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """Photo-like RGB uint8 pictures (count, H, W, 3): a lit gradient, a few blurred shapes, sensor noise.

    Deterministic for a seed. Not real photos, but with the properties that matter to a
    parity or calibration run: large smooth areas, sharp-ish edges, the full L range.
    """
    rng = np.random.default_rng(seed)
    out = np.empty((count, height, width, 3), np.uint8)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    scale = float(max(height, width))
    for i in range(count):
        angle = rng.uniform(0, 2 * math.pi)
        t = (yy * math.sin(angle) + xx * math.cos(angle)) / scale
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        c0, c1 = rng.uniform(0.05, 0.95, (2, 3)).astype(np.float32)
        img = c0 * (1 - t)[..., None] + c1 * t[..., None]
        for _ in range(int(rng.integers(2, 7))):
            colour = tuple(float(v) for v in rng.uniform(0, 1, 3))
            center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            axes = (int(rng.integers(1, max(2, width // 2))), int(rng.integers(1, max(2, height // 2))))
            if rng.random() < 0.5:
                cv2.ellipse(img, center, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
            else:
                corner = (center[0] + axes[0], center[1] + axes[1])
                cv2.rectangle(img, center, corner, colour, -1)
        sigma = max(scale / 150.0, 0.5)
        img = cv2.GaussianBlur(img, (0, 0), sigma)
        img += rng.normal(0.0, 0.02, img.shape).astype(np.float32)
        out[i] = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


def image_files(folder: Path) -> list[Path]:
    """Picture files under `folder` (recursive, sorted so runs are reproducible)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"{folder}: not a folder of pictures")
    return list(walk_pictures(folder))


def load_photos(folder: Path, count: int, height: int, width: int, *, offset: int = 0) -> np.ndarray:
    """`count` pictures from `folder` as RGB uint8 (count, H, W, 3): scaled to cover H x W, centre-cropped.

    `offset` skips that many files first (cyclically), so calibration and evaluation can
    take different pictures from the same folder.
    """
    files = image_files(folder)
    if not files:
        raise ExportError(f"{folder}: no pictures ({', '.join(sorted(INPUT_SUFFIXES))}) found")
    out = np.empty((count, height, width, 3), np.uint8)
    got, tried = 0, 0
    while got < count:
        if tried >= len(files) and got == 0:
            raise ExportError(f"{folder}: none of its {len(files)} picture files could be decoded")
        path = files[(offset + tried) % len(files)]
        tried += 1
        bgr = decode_bgr(path)  # np.fromfile + imdecode: also non-ASCII paths on Windows
        if bgr is None:
            log.warning("%s: not decodable, skipped", path)
            continue
        h, w = bgr.shape[:2]
        k = max(height / h, width / w)
        resized = cv2.resize(bgr, (max(width, round(w * k)), max(height, round(h * k))), interpolation=cv2.INTER_AREA)
        y0 = (resized.shape[0] - height) // 2
        x0 = (resized.shape[1] - width) // 2
        out[got] = cv2.cvtColor(resized[y0 : y0 + height, x0 : x0 + width], cv2.COLOR_BGR2RGB)
        got += 1
    return out


def photo_l(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 batch (N, H, W, 3) -> the network's L input (N, 1, H, W) float32, via runtime.color."""
    l_n, _ = color.rgb_to_network(rgb)
    return np.ascontiguousarray(l_n.transpose(0, 3, 1, 2))


def random_l(batch: int, height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """Uniform random L in network units [-1, 1], (N, 1, H, W) float32."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (batch, 1, height, width)).astype(np.float32)


def parity_shapes(size_multiple: int, inference_size: int) -> list[tuple[int, int, int]]:
    """(batch, H, W) triples: two batch sizes, >= 3 distinct sizes (square, non-square, the recommended one).

    The smallest valid size (one size multiple: a 1x1 bottleneck) is included on purpose:
    it is where a graph specialised to its dummy input would break first.
    """
    m = size_multiple
    s = round_up(inference_size, m)  # the recommended size rounded up to a valid one
    shapes = [(2, 2 * m, 2 * m), (1, m, 3 * m), (1, s, s)]
    if len({(h, w) for _, h, w in shapes}) < 3:
        shapes.append((2, 3 * m, 2 * m))
    return shapes


def parity_inputs(
    size_multiple: int,
    inference_size: int,
    *,
    photos: Path | None = None,
    seed: int = 0,
    shapes: Sequence[tuple[int, int, int]] | None = None,
) -> list[tuple[str, np.ndarray]]:
    """(kind, L batch) pairs: random and photo-like inputs at each parity shape."""
    cases: list[tuple[str, np.ndarray]] = []
    used = 0  # pictures taken from the folder so far: each batch takes the next ones
    for i, (n, h, w) in enumerate(shapes or parity_shapes(size_multiple, inference_size)):
        cases.append(("random", random_l(n, h, w, seed=seed + i)))
        if photos is not None:
            cases.append(("photos", photo_l(load_photos(photos, n, h, w, offset=used))))
            used += n
        else:
            cases.append(("photo-like", photo_l(synthetic_photos(n, h, w, seed=seed + 100 + i))))
    return cases


# ------------------------------------------------------------------------------ figures


@dataclass(frozen=True)
class ParityCase:
    """One input batch: how far the candidate's ab is from the reference's (network units)."""

    inputs: str  # random | photo-like | photos
    batch: int
    height: int
    width: int
    max_abs: float
    mean_abs: float
    p99_abs: float

    @property
    def max_abs_ab(self) -> float:
        """The largest difference in Lab ab units."""
        return self.max_abs * color.AB_SCALE


@dataclass(frozen=True)
class ParityReport:
    """Differences of `candidate` from `reference` over several input batches."""

    candidate: str
    reference: str
    tolerance: float | None  # on max_abs (network units); None: measured only
    cases: tuple[ParityCase, ...]

    @property
    def max_abs(self) -> float:
        return max(c.max_abs for c in self.cases)

    @property
    def mean_abs(self) -> float:
        # Weighted by pixels so a big batch counts for what it contains.
        pixels = [c.batch * c.height * c.width for c in self.cases]
        return sum(c.mean_abs * p for c, p in zip(self.cases, pixels)) / sum(pixels)

    @property
    def p99_abs(self) -> float:
        return max(c.p99_abs for c in self.cases)

    @property
    def ok(self) -> bool:
        return self.tolerance is None or self.max_abs <= self.tolerance

    def summary(self) -> str:
        shapes = sorted({f"{c.batch}x{c.height}x{c.width}" for c in self.cases})
        kinds = sorted({c.inputs for c in self.cases})
        tol = f" (tolerance {self.tolerance:.0e})" if self.tolerance is not None else ""
        return (
            f"{self.candidate} vs {self.reference}: max |d ab_n| {self.max_abs:.2e}{tol}, mean {self.mean_abs:.2e}, "
            f"= max {self.max_abs * color.AB_SCALE:.3g} / mean {self.mean_abs * color.AB_SCALE:.3g} Lab units; "
            f"{len(self.cases)} batches ({', '.join(kinds)}) at N x H x W {', '.join(shapes)}"
        )

    def to_dict(self) -> dict:
        return {
            "candidate": self.candidate,
            "reference": self.reference,
            "tolerance": self.tolerance,
            "max_abs": self.max_abs,
            "mean_abs": self.mean_abs,
            "p99_abs": self.p99_abs,
            "cases": [asdict(c) for c in self.cases],
        }


def compare(
    reference: Runner,
    candidate: Runner,
    batches: Iterable[tuple[str, np.ndarray]],
    *,
    reference_name: str,
    candidate_name: str,
    tolerance: float | None = None,
) -> ParityReport:
    """Run both on every batch; raise ExportError on a shape mismatch, a non-finite value or max_abs > tolerance."""
    cases = []
    for kind, l_n in batches:
        n, _, h, w = l_n.shape
        want = reference(l_n)
        got = candidate(l_n)
        if got.shape != want.shape:
            raise ExportError(
                f"{candidate_name} returned shape {tuple(got.shape)} for input {tuple(l_n.shape)}; "
                f"{reference_name} returned {tuple(want.shape)}"
            )
        if not np.isfinite(got).all():
            raise ExportError(f"{candidate_name} returned non-finite values for a {kind} input {tuple(l_n.shape)}")
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        cases.append(
            ParityCase(kind, n, h, w, float(diff.max()), float(diff.mean()), float(np.percentile(diff, 99)))
        )
    report = ParityReport(candidate_name, reference_name, tolerance, tuple(cases))
    log.debug("%s", report.summary())
    if not report.ok:
        worst = max(report.cases, key=lambda c: c.max_abs)
        raise ExportError(
            f"parity check failed: {candidate_name} differs from {reference_name} by up to {report.max_abs:.3g} "
            f"(tolerance {tolerance:.0e}), worst on {worst.inputs} input {worst.batch}x{worst.height}x{worst.width}"
        )
    return report


# ------------------------------------------------------------------------------ runners


def ort_runner(model: bytes | Path) -> Runner:
    """An onnxruntime CPU session as a Runner (CPU: the provider every machine has, and the reference one)."""
    try:
        session = open_session(model, [CPU])
    except ModelError as exc:  # its cause is onnxruntime's own message, which is what the exporter reports
        raise ExportError(f"onnxruntime cannot load the exported graph: {exc.__cause__ or exc}") from exc
    name = session.get_inputs()[0].name

    def run(l_n: np.ndarray) -> np.ndarray:
        return session.run(None, {name: l_n})[0]

    return run


def opencv_runner(model: bytes | Path) -> Runner:
    """OpenCV's DNN module as a Runner: an ONNX consumer independent of onnxruntime."""
    try:
        if isinstance(model, Path):
            net = cv2.dnn.readNetFromONNX(str(model))
        else:
            net = cv2.dnn.readNetFromONNX(np.frombuffer(model, np.uint8))
    except cv2.error as exc:
        raise ExportError(f"OpenCV DNN cannot load the model: {exc}") from exc

    def run(l_n: np.ndarray) -> np.ndarray:
        net.setInput(l_n)
        return np.asarray(net.forward(), dtype=np.float32)

    return run


def torch_runner(module: Any) -> Runner:  # a torch.nn.Module; torch is imported lazily
    """A PyTorch module (already in eval mode) as a Runner, gradients off."""
    import torch

    def run(l_n: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(l_n)).float().numpy()

    return run
