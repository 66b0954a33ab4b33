"""Colour strength: core.color.scale_chroma (gamut-safe boost) and the Colorizer's saturation option."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest

from labcolor.core import color
from labcolor.core.errors import ConfigError
from labcolor.core.metadata import METADATA_KEY, MetadataError, ModelMetadata
from labcolor.runtime import Colorizer
from tests import runtime_fixtures as fx


def _chroma_hue(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.hypot(lab[..., 1], lab[..., 2]), np.arctan2(lab[..., 2], lab[..., 1])


def test_desaturation_scales_ab_and_zero_is_gray() -> None:
    lab = np.array([[[50, 20, -10], [70, -40, 60]]], np.float32)
    half = color.scale_chroma(lab.copy(), 0.5)
    np.testing.assert_allclose(half[..., 1:], lab[..., 1:] * 0.5)
    np.testing.assert_array_equal(half[..., 0], lab[..., 0])
    assert not color.scale_chroma(lab.copy(), 0.0)[..., 1:].any()
    np.testing.assert_array_equal(color.scale_chroma(lab.copy(), 1.0), lab)
    with pytest.raises(ValueError, match="saturation"):
        color.scale_chroma(lab.copy(), -0.1)


def test_boost_keeps_hue_and_stops_at_the_gamut_edge() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    lab = color.rgb_to_lab(rgb)
    boosted = color.scale_chroma(lab.copy(), 2.0)
    c0, h0 = _chroma_hue(lab)
    c1, h1 = _chroma_hue(boosted)
    np.testing.assert_array_equal(boosted[..., 0], lab[..., 0])  # L untouched
    coloured = c0 > 2
    assert np.abs(np.angle(np.exp(1j * (h1 - h0)))[coloured]).max() < 1e-4  # hue kept
    assert (c1 >= c0 - 1e-4).all() and (c1 <= 2 * c0 + 1e-3).all()  # between own and doubled chroma
    # Every boosted colour is inside sRGB: converting to RGB and back barely moves it.
    back = color.rgb_to_lab(color.lab_to_rgb_float(boosted))
    assert np.abs(back - boosted).max() < color.GAMUT_TOLERANCE
    # Low-chroma colours have room to double in full; saturated ones were limited.
    room = c0 < 8
    np.testing.assert_allclose(c1[room], 2 * c0[room], rtol=1e-4, atol=1e-4)
    assert (c1[~room] < 2 * c0[~room] - 1e-3).any()
    # What plain per-channel clipping would do instead: shift hues.
    clipped = color.rgb_to_lab(color.lab_to_rgb_float(np.concatenate([lab[..., :1], 2 * lab[..., 1:]], -1)))
    _, hc = _chroma_hue(clipped)
    assert np.abs(np.angle(np.exp(1j * (hc - h0)))[coloured]).max() > 0.05


def _with_saturation(src: Path, dest: Path, saturation: float) -> Path:
    model = onnx.load(str(src))
    props = {p.key: p.value for p in model.metadata_props}
    meta = dataclasses.replace(ModelMetadata.from_json(props[METADATA_KEY]), saturation=saturation)
    onnx.helper.set_model_props(model, {**props, METADATA_KEY: meta.to_json()})
    onnx.save(model, str(dest))
    return dest


def test_colorizer_strength_from_metadata_option_and_call(tmp_path: Path) -> None:
    const = fx.make_constant_model(tmp_path / "c.onnx", (0.2, -0.1))
    gray = fx.photo(30, 40, channels=1)
    own = Colorizer(const, "cpu")
    assert own.saturation == 1.0  # files without the field: the model's own colours
    half_file = _with_saturation(const, tmp_path / "half.onnx", 0.5)
    half = Colorizer(half_file, "cpu")
    assert half.saturation == 0.5
    chroma = [float(_chroma_hue(color.rgb_to_lab(c.colorize(gray)))[0].mean()) for c in (own, half)]
    assert chroma[1] == pytest.approx(chroma[0] / 2, rel=0.05)
    # The option and the call override the file's default.
    np.testing.assert_array_equal(Colorizer(half_file, "cpu", saturation=1.0).colorize(gray), own.colorize(gray))
    np.testing.assert_array_equal(half.colorize(gray, saturation=1.0), own.colorize(gray))
    gray_out = own.colorize(gray, saturation=0.0)
    assert np.abs(gray_out.astype(int) - gray[..., None]).max() <= 1  # gray in, gray out
    with pytest.raises(ConfigError, match="saturation"):
        Colorizer(const, "cpu", saturation=-1)
    with pytest.raises(MetadataError, match="saturation"):
        _with_saturation(const, tmp_path / "bad.onnx", 9.0)
