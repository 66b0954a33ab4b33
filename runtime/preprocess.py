"""Pure pre-processing: a decoded picture -> full-resolution L (+ alpha) and the network's input.

No session here. Shapes: full-resolution L is (H, W) float32 in Lab units [0, 100]; the
network input of one picture is (1, ph, pw) float32 in network units, the picture resized
so its longer side is `size`, then reflect-padded up to multiples of `size_multiple`.
All Lab maths goes through runtime.color with the scaling the model's metadata records.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from labcolor.core import color
from labcolor.core.color import LabScaling

# Colour -> L runs in row strips of about this many pixels, so a 100-megapixel photo never
# needs a full-size float32 RGB + Lab copy (12 bytes/pixel each) at once.
STRIP_PIXELS = 1 << 20

_lut_lock = threading.Lock()
_luts: dict[type, np.ndarray] = {}


@dataclass(frozen=True)
class Prepared:
    """One picture, ready for the network and for the merge afterwards."""

    l: np.ndarray  # (H, W) float32, L in [0, 100] at full resolution: the output's lightness
    alpha: np.ndarray | None  # (H, W) as decoded (uint8/uint16/float), or None
    dtype: np.dtype  # pixel type of the result: uint8, uint16, or float32 for float inputs
    net: np.ndarray  # (1, ph, pw) float32 normalised L, ph and pw multiples of size_multiple
    crop: tuple[int, int]  # (h, w): the part of `net` (and of the predicted ab) that is picture, not padding

    @property
    def shape(self) -> tuple[int, int]:
        return self.l.shape[0], self.l.shape[1]

    @property
    def net_shape(self) -> tuple[int, int]:
        return self.net.shape[1], self.net.shape[2]


def gray_lut(dtype: type) -> np.ndarray:
    """L (float32) of every uint8 or uint16 gray value, computed once through color.gray_to_l.

    A gray pixel's L depends on its value only, so a table lookup gives exactly color.gray_to_l's
    answer at a tenth of its cost (no float RGB copy, no cvtColor).
    """
    with _lut_lock:
        lut = _luts.get(dtype)
        if lut is None:
            values = np.arange(np.iinfo(dtype).max + 1, dtype=dtype)[None, :]  # (1, 256) or (1, 65536)
            lut = _luts[dtype] = np.ascontiguousarray(color.gray_to_l(values)[0], dtype=np.float32)
        return lut


def _parts(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """gray (H, W), gray+alpha (H, W, 2), colour (H, W, 3) or colour+alpha (H, W, 4) -> (pixels, alpha).

    pixels is the gray (H, W) or colour (H, W, 3) part, a view of `image`.
    """
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        pixels, alpha = image, None
    elif image.ndim == 3 and image.shape[2] in (2, 3, 4):
        channels = image.shape[2]
        alpha = image[:, :, channels - 1] if channels in (2, 4) else None
        pixels = image[:, :, 0] if channels == 2 else image[:, :, :3]
    else:
        raise ValueError(f"expected a gray (H, W) or (H, W, 1..4) picture, got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise TypeError(f"expected uint8, uint16 or float pixels, got {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"empty picture of shape {image.shape}")
    return pixels, alpha


def lightness(pixels: np.ndarray, *, bgr: bool = True) -> np.ndarray:
    """Gray (H, W) or colour (H, W, 3) pixels -> L (H, W) float32 in [0, 100], through runtime.color.

    A colour picture counts as its Lab lightness (its colours are replaced). Float pixels are taken
    to be in [0, 1], as color.py reads them. Colour is converted in row strips (bounded memory).
    """
    if pixels.ndim == 2 and pixels.dtype == np.uint8:
        return cv2.LUT(np.ascontiguousarray(pixels), gray_lut(np.uint8))  # float32 LUT -> float32 L
    if pixels.ndim == 2 and pixels.dtype == np.uint16:
        return gray_lut(np.uint16).take(pixels)
    l = np.empty(pixels.shape[:2], np.float32)
    rows = max(1, STRIP_PIXELS // pixels.shape[1])
    for y in range(0, pixels.shape[0], rows):
        part = pixels[y : y + rows]
        if part.dtype.kind == "f":
            part = np.clip(part, 0.0, 1.0)
        l[y : y + rows] = color.gray_to_l(part) if part.ndim == 2 else color.luminance(part, bgr=bgr)
    return l


def split_picture(image: np.ndarray, *, bgr: bool = True) -> tuple[np.ndarray, np.ndarray | None, np.dtype]:
    """A picture -> (full-resolution L (H, W) float32, alpha (H, W) or None, result dtype)."""
    pixels, alpha = _parts(image)
    dtype = np.dtype(np.float32) if image.dtype.kind == "f" else image.dtype
    return lightness(pixels, bgr=bgr), (np.ascontiguousarray(alpha) if alpha is not None else None), dtype


def working_shape(height: int, width: int, size: int, min_size: int = 0) -> tuple[int, int]:
    """(h, w) of the copy the network sees, aspect ratio kept. Its longer side is the picture's own,
    shrunk to `size` when larger and enlarged to `min_size` when smaller (never beyond `size`).

    Measured on the validation photos shrunk to small sizes (README, "Working size"): enlarging a
    picture to the full working size made colours worse (e.g. 160 px pictures: ΔE00 12.35 at 256
    vs 12.21 native), while pictures far below the training crop size gained from being enlarged to
    it (96 px pictures: 12.96 native vs 12.39 at 128). The Colorizer passes the model's train_size.
    """
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    longer = min(size, max(height, width, min_size))
    scale = longer / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def round_up(value: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that is >= value (a model's size_multiple, for sizes and pads)."""
    return -(-value // multiple) * multiple


def padded_shape(h: int, w: int, multiple: int) -> tuple[int, int]:
    """(h, w) rounded up to multiples of `multiple`, the model's size_multiple."""
    return round_up(h, multiple), round_up(w, multiple)


def network_input(pixels: np.ndarray, size: int, multiple: int, scaling: LabScaling, *,
                  bgr: bool = True, min_size: int = 0) -> tuple[np.ndarray, tuple[int, int]]:
    """Gray (H, W) or colour (H, W, 3) pixels -> ((1, ph, pw) normalised L, reflect-padded; (h, w) valid part).

    The picture is resized first and its L taken at working size, as the trainer does (trainer.data:
    INTER_AREA when shrinking, INTER_CUBIC when enlarging, then Lab): the network sees what it was
    trained on, and resizing 8-bit pixels is cheaper than resizing float L.
    """
    h, w = working_shape(pixels.shape[0], pixels.shape[1], size, min_size)
    if (h, w) == pixels.shape[:2]:
        small = pixels
    else:
        shrinking = h < pixels.shape[0] or w < pixels.shape[1]
        small = cv2.resize(np.ascontiguousarray(pixels), (w, h),
                           interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    l = lightness(small, bgr=bgr)
    ph, pw = padded_shape(h, w, multiple)
    if (ph, pw) != (h, w):
        # Reflection keeps image statistics at the border; zero padding would read as a black frame.
        l = cv2.copyMakeBorder(l, 0, ph - h, 0, pw - w, cv2.BORDER_REFLECT_101)
    return color.normalize_l(l, scaling)[None], (h, w)


def prepare(image: np.ndarray, *, size: int, multiple: int, scaling: LabScaling, bgr: bool = True,
            min_size: int = 0) -> Prepared:
    """A decoded picture -> Prepared (full-res L, alpha, result dtype, network input)."""
    pixels, _ = _parts(image)
    net, crop = network_input(pixels, size, multiple, scaling, bgr=bgr, min_size=min_size)
    l, alpha, dtype = split_picture(image, bgr=bgr)
    return Prepared(l=l, alpha=alpha, dtype=dtype, net=net, crop=crop)


def group_by_shape(items: Sequence[Prepared], batch_size: int) -> list[list[int]]:
    """Indices of `items` in batches of at most `batch_size` pictures whose network inputs share a shape.

    Pictures of different sizes batch together whenever their working copies have the same padded
    shape (e.g. every 4:3 landscape photo); different shapes never share a batch, because padding a
    picture further than it would be alone changes what a convolutional network predicts near its
    borders, and batched results must equal one-by-one results.
    """
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        groups[item.net_shape].append(i)
    return [idx[k : k + batch_size] for idx in groups.values() for k in range(0, len(idx), batch_size)]


def stack(items: Sequence[Prepared]) -> np.ndarray:
    """Same-shape network inputs -> one (N, 1, ph, pw) float32 batch."""
    return np.stack([item.net for item in items])
