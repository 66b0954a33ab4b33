"""runtime.metrics against scikit-image (an independent implementation) on real pictures, and known values.

Real pictures: scikit-image's bundled photographs (astronaut, coffee, chelsea; halved for speed)
and photo-like synthetic pictures, each against realistic "predictions": a JPEG re-encoding, a
blurred noisy copy, a recoloured copy (ab rotated and shrunk, then clipped to sRGB) and the
grayscale input (ab = 0).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from skimage import data as skdata
from skimage.color import deltaE_ciede2000
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from labcolor.core import color, metrics
from tests.conftest import synthetic_photo

# Sharma, Wu & Dalal (2005), Table 1: L1 a1 b1 L2 a2 b2 dE00 (the 34 published test pairs).
SHARMA = np.array([
    [50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425],
    [50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615],
    [50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412],
    [50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000],
    [50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000],
    [50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000],
    [50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669],
    [50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195],
    [50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045],
    [50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045],
    [50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461],
    [50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065],
    [50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492],
    [50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977],
    [50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030],
    [50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535],
    [50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000],
    [50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000],
    [50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000],
    [50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000],
    [60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644],
    [63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630],
    [61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731],
    [35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645],
    [22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373],
    [36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146],
    [90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441],
    [90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381],
    [6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377],
    [2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082],
])


def _real_pictures() -> dict[str, np.ndarray]:
    pictures = {}
    for name in ("astronaut", "coffee", "chelsea"):
        rgb = getattr(skdata, name)()[..., :3]
        pictures[name] = cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(3)
    for k in range(2):
        photo = cv2.cvtColor(synthetic_photo(rng, 120, 160), cv2.COLOR_BGR2RGB)
        # Texture, so the picture is not piecewise flat like a drawing.
        noise = cv2.GaussianBlur(rng.normal(0, 12, photo.shape), (0, 0), 1.2)
        pictures[f"synthetic{k}"] = np.clip(photo + noise, 0, 255).astype(np.uint8)
    return pictures


PICTURES = _real_pictures()


def _predictions(truth: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    ok, jpeg = cv2.imencode(".jpg", truth, [cv2.IMWRITE_JPEG_QUALITY, 30])
    assert ok
    blurred = cv2.GaussianBlur(truth.astype(np.float32), (0, 0), 1.5) + rng.normal(0, 6, truth.shape)
    lab = color.rgb_to_lab(truth)
    angle = np.radians(40.0)
    a, b = lab[..., 1].copy(), lab[..., 2].copy()
    lab[..., 1] = 0.7 * (a * np.cos(angle) - b * np.sin(angle))
    lab[..., 2] = 0.7 * (a * np.sin(angle) + b * np.cos(angle)) + 8.0
    gray = color.rgb_to_lab(truth)
    gray[..., 1:] = 0
    return {
        "jpeg": cv2.imdecode(jpeg, cv2.IMREAD_UNCHANGED),  # channel order is irrelevant for a round trip
        "blur_noise": np.clip(blurred, 0, 255).astype(np.uint8),
        "recolour": color.lab_to_rgb(lab),
        "gray": color.lab_to_rgb(gray),
    }


PAIRS = [(name, kind) for name in PICTURES for kind in ("jpeg", "blur_noise", "recolour", "gray")]
_PRED_CACHE: dict[str, dict[str, np.ndarray]] = {}


def pair(name: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    if name not in _PRED_CACHE:
        _PRED_CACHE[name] = _predictions(PICTURES[name])
    return _PRED_CACHE[name][kind], PICTURES[name]


# --------------------------------------------------------------------------- agreement with scikit-image


@pytest.mark.parametrize(("name", "kind"), PAIRS)
def test_psnr_and_ssim_match_skimage(name: str, kind: str) -> None:
    pred, truth = pair(name, kind)
    assert metrics.psnr(pred, truth) == pytest.approx(peak_signal_noise_ratio(truth, pred, data_range=255), abs=1e-9)
    expected = structural_similarity(pred, truth, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=255, channel_axis=-1)
    assert metrics.ssim(pred, truth) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(("name", "kind"), PAIRS)
def test_ciede2000_matches_skimage_per_pixel(name: str, kind: str) -> None:
    pred, truth = pair(name, kind)
    lab_pred, lab_truth = color.rgb_to_lab(pred), color.rgb_to_lab(truth)
    mine = metrics.ciede2000(lab_pred, lab_truth)
    theirs = deltaE_ciede2000(lab_truth.astype(np.float64), lab_pred.astype(np.float64), channel_axis=-1)
    assert mine.shape == truth.shape[:2]
    # Where the two colours' hues are exactly opposite (anti-parallel ab vectors), the mean hue is
    # ambiguous; we follow Sharma et al.'s reference (its 34 pairs are checked exactly below) while
    # scikit-image 0.26 picks the other branch (up to 0.004 apart). Those few pixels are left out.
    a1, b1, a2, b2 = lab_pred[..., 1], lab_pred[..., 2], lab_truth[..., 1], lab_truth[..., 2]
    opposite = (np.abs(a1 * b2 - a2 * b1) < 1e-9) & (a1 * a2 + b1 * b2 < 0)
    assert opposite.mean() < 1e-3
    assert np.abs(mine - theirs)[~opposite].max() < 1e-4
    assert mine.mean() > 0.5  # every distortion changes colours noticeably


def test_ciede2000_sharma_test_pairs() -> None:
    lab1, lab2, expected = SHARMA[:, :3], SHARMA[:, 3:6], SHARMA[:, 6]
    # The table is rounded to 4 decimals.
    assert np.abs(metrics.ciede2000(lab1, lab2) - expected).max() <= 5.1e-5
    assert np.abs(metrics.ciede2000(lab2, lab1) - expected).max() <= 5.1e-5  # symmetric
    assert np.abs(metrics.ciede2000(lab1, lab2) - deltaE_ciede2000(lab1, lab2)).max() < 1e-9


def test_ciede2000_identity_and_neutral_colours() -> None:
    lab = np.array([[0.0, 0.0, 0.0], [50.0, 0.0, 0.0], [70.0, -40.0, 60.0], [30.0, 20.0, -80.0]])
    assert np.all(metrics.ciede2000(lab, lab) == 0)
    # Two neutral grays differ only in lightness: dE00 = |dL| / S_L (C' = 0, so no hue term).
    l_mean = 55.0
    sl = 1 + 0.015 * (l_mean - 50) ** 2 / math.sqrt(20 + (l_mean - 50) ** 2)
    assert metrics.ciede2000(np.array([50.0, 0, 0]), np.array([60.0, 0, 0])) == pytest.approx(10 / sl, abs=1e-12)


# --------------------------------------------------------------------------- known values


def test_colourfulness_known_values() -> None:
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    # rg = 255, yb = 127.5 everywhere: no spread, M = 0.3 * |(255, 127.5)|.
    assert metrics.colourfulness(red) == pytest.approx(0.3 * math.hypot(255, 127.5), abs=1e-9)
    half = red.copy()
    half[:4] = (0, 0, 255)  # blue: rg = 0, yb = -255
    # Two equal halves: mean rg 127.5, std rg 127.5; mean yb -63.75, std yb 191.25.
    expected = math.hypot(127.5, 191.25) + 0.3 * math.hypot(127.5, -63.75)
    assert metrics.colourfulness(half) == pytest.approx(expected, abs=1e-9)
    gray = np.repeat(np.arange(64, dtype=np.uint8).reshape(8, 8, 1) * 4, 3, axis=2)
    assert metrics.colourfulness(gray) == 0.0
    assert 20 < metrics.colourfulness(PICTURES["coffee"]) < 150  # a real photo sits in the paper's range


def test_pixel_accuracy_thresholds() -> None:
    truth = color.rgb_to_lab(PICTURES["chelsea"][:40, :40]).astype(np.float64)
    pred = truth.copy()
    pred[:20, :20] += (0.0, 5.0, -5.0)  # a, b within 2% of 255 (5.1): right
    pred[:20, 20:] += (1.9, 0.0, 0.0)  # L within 2% of 100: right
    pred[20:, :20] += (0.0, 0.0, 5.2)  # b off by more than 5.1: wrong
    pred[20:, 20:] += (2.1, 0.0, 0.0)  # L off by more than 2: wrong
    assert metrics.pixel_accuracy(pred, truth) == 0.5
    assert metrics.ACCURACY_AB_TOL == pytest.approx(5.1)
    assert metrics.pixel_accuracy(truth, truth) == 1.0


@pytest.mark.parametrize("name", ["astronaut", "synthetic0"])
def test_auc_matches_brute_force(name: str) -> None:
    pred, truth = pair(name, "recolour")
    lab_pred, lab_truth = color.rgb_to_lab(pred), color.rgb_to_lab(truth)
    err = np.sqrt(((lab_pred[..., 1:].astype(np.float64) - lab_truth[..., 1:]) ** 2).sum(axis=-1))
    curve = np.array([np.mean(err <= t) for t in range(151)])
    expected = np.trapezoid(curve, dx=1.0) / 150.0
    assert metrics.ab_auc(lab_pred, lab_truth) == pytest.approx(expected, abs=1e-12)
    assert np.allclose(metrics.ab_accuracy_curve(err), curve)


def test_auc_known_values() -> None:
    truth = np.zeros((10, 10, 3))
    shifted = truth.copy()
    shifted[..., 1] = 30.5  # every pixel 30.5 ab units off: the curve is 0 up to t = 30, 1 from t = 31
    assert metrics.ab_auc(shifted, truth) == pytest.approx((150 - 31 + 0.5) / 150, abs=1e-12)
    shifted[..., 1] = 200.0
    assert metrics.ab_auc(shifted, truth) == 0.0
    assert metrics.ab_auc(truth, truth) == 1.0


def test_identical_pictures_score_perfectly() -> None:
    truth = PICTURES["coffee"]
    s = metrics.score(truth.copy(), truth)
    assert s["psnr"] == metrics.PSNR_CAP_DB == 100.0
    assert s["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert s["ciede2000"] == 0.0
    assert s["accuracy"] == 1.0
    assert s["auc"] == 1.0
    assert s["colourfulness_ratio"] == 1.0


def test_gray_prediction_has_zero_colourfulness() -> None:
    pred, truth = pair("astronaut", "gray")
    s = metrics.score(pred, truth)
    assert s["colourfulness"] < 0.5 and s["colourfulness_ratio"] < 0.01
    assert s["colourfulness_truth"] > 10
    assert 0 < s["auc"] < 1 and s["ciede2000"] > 1


def test_aggregate_means_and_ratio_of_means() -> None:
    per_image = [
        {"psnr": 20.0, "ssim": 0.5, "ciede2000": 4.0, "accuracy": 0.2, "auc": 0.8,
         "colourfulness": 5.0, "colourfulness_truth": 10.0, "colourfulness_ratio": 0.5},
        {"psnr": 30.0, "ssim": 0.7, "ciede2000": 2.0, "accuracy": 0.4, "auc": 0.9,
         "colourfulness": 30.0, "colourfulness_truth": 30.0, "colourfulness_ratio": 1.0},
    ]
    agg = metrics.aggregate(per_image)
    assert agg["psnr"] == 25.0 and agg["ssim"] == pytest.approx(0.6) and agg["ciede2000"] == 3.0
    assert agg["colourfulness_ratio"] == pytest.approx(17.5 / 20.0)  # not the mean of ratios (0.75)
    gray_truths = [{**p, "colourfulness_truth": 0.0} for p in per_image]
    assert math.isnan(metrics.aggregate(gray_truths)["colourfulness_ratio"])


def test_bad_inputs_are_refused() -> None:
    a = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="shape"):
        metrics.psnr(a, np.zeros((20, 21, 3), np.uint8))
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(np.zeros((10, 30, 3), np.uint8), np.zeros((10, 30, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        metrics.score(a.astype(np.float32), a)
