"""Pure post-processing: the network's ab at working size -> the full-resolution coloured picture.

The predicted ab (2, ph, pw) is cropped to the picture's region (h, w), scaled to Lab units,
upsampled bilinearly to (H, W) and merged with the *original* full-resolution L, then
converted through OpenCV's float32 Lab path (runtime.color) to BGR(A) uint8/uint16.
The merge and conversion run in row strips: faster (the float temporaries stay in cache)
and bounded in memory for very large photos.
"""

from __future__ import annotations

import cv2
import numpy as np

from labcolor.core import color
from labcolor.core.color import LabScaling

# Up to this many output pixels the ab is upsampled in one cv2.resize; above it (very large
# photos) row by row from a horizontally-resized copy, so no (H, W, 2) float32 array is held.
ONE_PIECE_PIXELS = 1 << 25  # 33.5 MP: a 384 MB ab array at most
STRIP_ROWS_PIXELS = 1 << 18  # merge + Lab->RGB in strips of ~256k pixels (~3 MB per float32 plane)


def ab_small(ab_n: np.ndarray, crop: tuple[int, int], scaling: LabScaling) -> np.ndarray:
    """Network output (2, ph, pw) -> (h, w, 2) float32 ab in Lab units, padding cropped away.

    Scaling is linear, so it is applied here at working size rather than after upsampling.
    """
    h, w = crop
    a = color.denormalize_ab(ab_n[0, :h, :w], scaling)
    b = color.denormalize_ab(ab_n[1, :h, :w], scaling)
    return cv2.merge([a, b])


class _Upsampler:
    """Bilinear (half-pixel centres, as cv2.resize) upsampling of (h, w, 2) ab to (H, W, 2), by row ranges."""

    def __init__(self, ab: np.ndarray, height: int, width: int) -> None:
        self.h, self.height = ab.shape[0], height
        if height * width <= ONE_PIECE_PIXELS:
            self.full: np.ndarray | None = cv2.resize(ab, (width, height), interpolation=cv2.INTER_LINEAR)
        else:
            self.full = None
            # Horizontal pass once, (h, W, 2); the vertical pass is done per strip in rows().
            self.wide = cv2.resize(ab, (width, ab.shape[0]), interpolation=cv2.INTER_LINEAR)

    def rows(self, y0: int, y1: int) -> np.ndarray:
        if self.full is not None:
            return self.full[y0:y1]
        sy = np.clip((np.arange(y0, y1) + 0.5) * (self.h / self.height) - 0.5, 0, self.h - 1)
        i0 = np.floor(sy).astype(np.intp)
        i1 = np.minimum(i0 + 1, self.h - 1)
        f = (sy - i0).astype(np.float32)[:, None, None]
        top = self.wide[i0]
        top *= 1 - f
        top += self.wide[i1] * f
        return top


def compose(
    l: np.ndarray, ab: np.ndarray, alpha: np.ndarray | None, dtype: np.dtype, *, bgr: bool = True,
    saturation: float = 1.0,
) -> np.ndarray:
    """Full-res L (H, W) + working-size ab (h, w, 2) in Lab units -> (H, W, 3|4) picture of `dtype`.

    saturation scales the chroma at full resolution, gamut-safe above 1 (color.scale_chroma).
    dtype uint8/uint16: rounded integers; float32: [0, 1]. Alpha (H, W) is appended unchanged
    (converted between 8 and 16 bits if the result's depth differs from the alpha's).
    """
    height, width = l.shape
    up = _Upsampler(ab, height, width)
    out = np.empty((height, width, 3), dtype)
    rows = max(1, STRIP_ROWS_PIXELS // width)
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        lab = color.merge_l_ab(l[y0:y1], up.rows(y0, y1))  # (rows, W, 3) float32
        color.scale_chroma(lab, saturation)
        if dtype == np.float32:
            out[y0:y1] = color.lab_to_rgb_float(lab, bgr=bgr)
        else:
            out[y0:y1] = color.lab_to_rgb(lab, bgr=bgr, dtype=dtype.type)
    if alpha is None:
        return out
    return cv2.merge([out, convert_depth(alpha, dtype)])


def convert_depth(channel: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """An alpha plane converted to `dtype` (uint8 <-> uint16 by 257, float in [0, 1])."""
    if channel.dtype == dtype:
        return channel
    peak = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
    unit = channel.astype(np.float32) / np.float32(peak[channel.dtype]) if channel.dtype in peak else channel
    unit = np.clip(unit, 0.0, 1.0)
    if dtype == np.float32:
        return unit.astype(np.float32)
    return (unit * np.float32(peak[np.dtype(dtype)]) + np.float32(0.5)).astype(dtype)


def colorize_prepared(l: np.ndarray, alpha: np.ndarray | None, dtype: np.dtype, ab_n: np.ndarray,
                      crop: tuple[int, int], scaling: LabScaling, *, bgr: bool = True,
                      saturation: float = 1.0) -> np.ndarray:
    """One picture's network output (2, ph, pw) + its full-res L/alpha -> the coloured picture."""
    return compose(l, ab_small(ab_n, crop, scaling), alpha, dtype, bgr=bgr, saturation=saturation)
