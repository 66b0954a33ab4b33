"""The Lab contract: round trips, batches, scaling, and agreement with scikit-image."""

from __future__ import annotations

import numpy as np
import pytest

from labcolor.core import color

skimage_color = pytest.importorskip("skimage.color")


@pytest.fixture
def rgb_cube() -> np.ndarray:
    """Every 5th level of each channel: 52**3 colours spanning the whole sRGB cube, as one image."""
    levels = np.arange(0, 256, 5, dtype=np.uint8)
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    return np.stack([r, g, b], axis=-1).reshape(len(levels) ** 2, len(levels), 3)


def test_round_trip_uint8_is_within_one_level(rgb_cube: np.ndarray) -> None:
    back = color.lab_to_rgb(color.rgb_to_lab(rgb_cube))
    err = np.abs(back.astype(int) - rgb_cube.astype(int))
    assert err.max() <= 1
    assert err.mean() < 0.05


def test_round_trip_uint16_is_within_a_few_levels() -> None:
    rgb16 = np.random.default_rng(0).integers(0, 65536, (64, 64, 3), dtype=np.uint16)
    back = color.lab_to_rgb(color.rgb_to_lab(rgb16), dtype=np.uint16)
    assert back.dtype == np.uint16
    err = np.abs(back.astype(int) - rgb16.astype(int))
    # OpenCV's float Lab path interpolates its gamma curve from tables: measured max 257
    # (one 8-bit level) and mean ~55 of 65535. 16-bit files stay 16-bit, with that precision.
    assert err.max() <= 257 + 8
    assert err.mean() < 100


def test_agrees_with_scikit_image(rgb_cube: np.ndarray) -> None:
    ours = color.rgb_to_lab(rgb_cube)
    theirs = skimage_color.rgb2lab(rgb_cube, illuminant="D65").astype(np.float32)
    # OpenCV's float path interpolates gamma and cube root from tables; measured against
    # scikit-image's exact formulas: max 0.43, mean 0.08 Lab units, well below a just
    # noticeable difference (~1 to 2.3).
    diff = np.abs(ours - theirs)
    assert diff.max() < 0.5
    assert diff.mean() < 0.1
    back = skimage_color.lab2rgb(ours.astype(np.float64))
    assert np.abs(back * 255 - rgb_cube).max() < 1.5


def test_bgr_flag_swaps_channels(rgb_cube: np.ndarray) -> None:
    np.testing.assert_allclose(color.rgb_to_lab(rgb_cube), color.rgb_to_lab(rgb_cube[..., ::-1].copy(), bgr=True),
                               atol=1e-5)


def test_batch_equals_per_image() -> None:
    batch = np.random.default_rng(1).integers(0, 256, (5, 17, 23, 3), dtype=np.uint8)
    lab = color.rgb_to_lab(batch)
    assert lab.shape == batch.shape and lab.dtype == np.float32
    for i in range(len(batch)):
        np.testing.assert_array_equal(lab[i], color.rgb_to_lab(batch[i]))
    np.testing.assert_array_equal(color.lab_to_rgb(lab)[2], color.lab_to_rgb(lab[2]))


def test_network_scaling_maps_the_gamut_into_unit_range(rgb_cube: np.ndarray) -> None:
    l_n, ab_n = color.rgb_to_network(rgb_cube)
    assert l_n.shape[-1] == 1 and ab_n.shape[-1] == 2
    assert -1.0 <= l_n.min() and l_n.max() <= 1.0
    assert np.abs(ab_n).max() <= 1.0
    # The whole range is used: black and white reach the ends of L.
    assert l_n.min() < -0.99 and l_n.max() > 0.99
    np.testing.assert_array_equal(color.network_to_rgb(l_n, ab_n), color.lab_to_rgb(color.rgb_to_lab(rgb_cube)))


def test_scaling_inverse_pairs() -> None:
    x = np.linspace(-1, 1, 11, dtype=np.float32)
    np.testing.assert_allclose(color.normalize_l(color.denormalize_l(x)), x, atol=1e-6)
    np.testing.assert_allclose(color.normalize_ab(color.denormalize_ab(x)), x, atol=1e-6)
    custom = color.LabScaling(ab_scale=128.0)
    assert color.denormalize_ab(np.float32(1.0), custom) == 128.0


def test_gray_l_matches_luminance_of_gray_rgb() -> None:
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_allclose(color.gray_to_l(gray), color.luminance(np.repeat(gray[..., None], 3, -1)), atol=1e-5)
    # A gray picture has (almost) no chroma: measured |ab| <= 0.125 from the table approximation.
    lab = color.rgb_to_lab(np.repeat(gray[..., None], 3, -1))
    assert np.abs(lab[..., 1:]).max() < 0.2


def test_merge_l_ab() -> None:
    lab = color.rgb_to_lab(np.random.default_rng(2).integers(0, 256, (8, 9, 3), dtype=np.uint8))
    np.testing.assert_array_equal(color.merge_l_ab(lab[..., 0], lab[..., 1:]), lab)


def test_rejects_bad_shapes_and_dtypes() -> None:
    with pytest.raises(ValueError, match="shape"):
        color.rgb_to_lab(np.zeros((4, 4), np.uint8))
    with pytest.raises(TypeError, match="int32"):
        color.rgb_to_lab(np.zeros((4, 4, 3), np.int32))
    with pytest.raises(TypeError):
        color.lab_to_rgb(np.zeros((4, 4, 3), np.float32), dtype=np.int8)
