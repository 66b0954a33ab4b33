"""core.imageio's shared decoding helpers used by training and evaluation (reduced decode, colour8)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from labcolor.core import imageio
from tests import runtime_fixtures as fx


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_reduced_decode_is_oriented_once(orientation: int) -> None:
    image = fx.photo(64, 96, seed=orientation)
    data = fx.jpeg_with_orientation(image, orientation)
    full = imageio.decode(data)
    small = imageio.decode(data, reduce=4)
    assert small.shape[:2] == (full.shape[0] // 4, full.shape[1] // 4)
    # Same picture at a quarter of the size: compare with the full decode shrunk the same way.
    shrunk = cv2.resize(full, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk.astype(int) - small.astype(int)).mean() < 12  # a 90° error would be far larger
    with pytest.raises(ValueError, match="reduce"):
        imageio.decode(data, reduce=3)


def test_color8_scales_depths_drops_alpha_and_refuses_gray() -> None:
    bgr16 = (fx.photo(8, 9, seed=1).astype(np.uint16) * 257)
    np.testing.assert_array_equal(imageio.color8(bgr16), fx.photo(8, 9, seed=1))
    bgra = np.dstack([fx.photo(8, 9, seed=2), np.full((8, 9), 7, np.uint8)])
    np.testing.assert_array_equal(imageio.color8(bgra), fx.photo(8, 9, seed=2))
    assert imageio.color8(np.zeros((8, 9), np.uint8)) is None
    as_float = imageio.color8(fx.photo(8, 9, seed=3).astype(np.float32) / 255.0)
    np.testing.assert_array_equal(as_float, fx.photo(8, 9, seed=3))
