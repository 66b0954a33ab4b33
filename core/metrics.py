"""Colorization metrics, pure numpy + OpenCV (no torch, no scikit-image at run time).

Every function scores ONE picture; `score` bundles them, `aggregate` averages over pictures.
Pictures are uint8 RGB (H, W, 3); Lab comes from `runtime.color.rgb_to_lab` (OpenCV's
float32 path, the project's Lab contract).

Conventions (tests/test_metrics.py checks them against scikit-image on real pictures):

* PSNR: on uint8 RGB, peak 255, MSE over all pixels and channels. Identical pictures have
  infinite PSNR; it is capped at PSNR_CAP_DB (100 dB) so averages and JSON stay finite.
* SSIM: Wang et al. 2004 on RGB, each channel separately, then averaged over channels; 11x11
  Gaussian window with sigma 1.5 (radius int(3.5 sigma + 0.5) = 5, as scikit-image's
  truncate=3.5), K1 0.01, K2 0.03, population (not sample) covariances, data range 255, the
  mean taken over the pixels at least 5 px from the border. This is
  ``skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255, channel_axis=-1)``.
* CIEDE2000: Sharma, Wu & Dalal 2005 (kL = kC = kH = 1), per pixel, vectorised; a picture's
  score is the mean over its pixels.
* Colourfulness: Hasler & Suesstrunk 2003 on RGB in 0..255: rg = R - G, yb = (R + G)/2 - B,
  M = sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2). The colourfulness
  *ratio* of a data set is a ratio of means: mean M(prediction) / mean M(ground truth)
  (per-picture ratios explode on near-gray ground truths); 1 is "as colourful as the truth".
* Pixel accuracy (Nazeri et al. 2018): a pixel is right when |dL| <= 2% of L's 0..100 range
  (2.0) and |da|, |db| <= 2% of a 255-unit a/b range (the -128..127 of their code): 5.1.
  When the runtime keeps the input's full-resolution L (it does), the prediction's L equals
  the truth's L up to 8-bit rounding and sRGB gamut clipping, so in practice this measures a
  and b; the L test is kept so the number means what the paper's does.
* AuC (Zhang et al. 2016): per-pixel Euclidean ab error; the fraction of pixels with error
  <= t for integer thresholds t = 0..150, integrated with the trapezoidal rule and divided
  by 150, so it lies in [0, 1] (1: every pixel's ab is exact).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from labcolor.core import color

PSNR_CAP_DB = 100.0
SSIM_SIGMA = 1.5
SSIM_RADIUS = int(3.5 * SSIM_SIGMA + 0.5)  # 5: an 11x11 window, as scikit-image's truncate=3.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
ACCURACY_L_TOL = 0.02 * 100.0  # 2% of L's 0..100 range
ACCURACY_AB_RANGE = 255.0  # a, b in -128..127, as in Nazeri et al.'s code
ACCURACY_AB_TOL = 0.02 * ACCURACY_AB_RANGE  # 5.1 Lab units
AUC_MAX_ERROR = 150  # Zhang et al.: thresholds 0..150 in ab units


@dataclass(frozen=True)
class Metric:
    """How one metric is shown: its key in score dictionaries, label, and which way is better."""

    key: str
    label: str  # short, ASCII (it is drawn into grid.png too)
    better: str  # "higher", "lower", or "one" (closest to 1)
    fmt: str
    description: str


METRICS: tuple[Metric, ...] = (
    Metric("psnr", "PSNR", "higher", ".2f", f"PSNR on uint8 RGB, capped at {PSNR_CAP_DB:g} dB"),
    Metric("ssim", "SSIM", "higher", ".4f", "SSIM (Gaussian sigma 1.5) per RGB channel, averaged over channels"),
    Metric("ciede2000", "dE00", "lower", ".2f", "mean CIEDE2000 colour difference per pixel"),
    Metric("colourfulness_ratio", "colour", "one", ".3f",
           "Hasler-Suesstrunk colourfulness, mean of predictions / mean of ground truths"),
    Metric("accuracy", "acc2%", "higher", ".4f",
           f"fraction of pixels with |dL| <= {ACCURACY_L_TOL:g} and |da|, |db| <= {ACCURACY_AB_TOL:g} (Nazeri et al.)"),
    Metric("auc", "AuC", "higher", ".4f",
           f"area under the cumulative per-pixel ab error curve, thresholds 0..{AUC_MAX_ERROR}, "
           "normalised to [0, 1] (Zhang et al.)"),
)
METRIC_KEYS = tuple(m.key for m in METRICS)


def _check_pair(pred: np.ndarray, truth: np.ndarray) -> None:
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth shape {truth.shape}")
    if pred.ndim != 3 or pred.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) pictures, got shape {pred.shape}")


def psnr(pred: np.ndarray, truth: np.ndarray, *, data_range: float = 255.0, cap: float = PSNR_CAP_DB) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels, at most `cap`."""
    _check_pair(pred, truth)
    mse = float(np.mean((pred.astype(np.float64) - truth.astype(np.float64)) ** 2))
    if mse == 0.0:
        return cap
    return float(min(cap, 10.0 * np.log10(data_range**2 / mse)))


def ssim(pred: np.ndarray, truth: np.ndarray, *, data_range: float = 255.0) -> float:
    """Mean structural similarity over RGB channels (see the module docstring for the exact settings)."""
    _check_pair(pred, truth)
    side = 2 * SSIM_RADIUS + 1
    if min(pred.shape[:2]) < side:
        raise ValueError(f"SSIM needs pictures at least {side}x{side} px, got {pred.shape[1]}x{pred.shape[0]}")
    x = pred.astype(np.float64)
    y = truth.astype(np.float64)

    def blur(image: np.ndarray) -> np.ndarray:
        # Same 11-tap normalised Gaussian as scipy.ndimage.gaussian_filter(sigma=1.5, truncate=3.5);
        # the border handling differs but the border is cropped away below.
        return cv2.GaussianBlur(image, (side, side), SSIM_SIGMA, sigmaY=SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    vxy = blur(x * y) - mx * my
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    r = SSIM_RADIUS
    return float(s[r:-r, r:-r].mean())


def ciede2000(lab1: np.ndarray, lab2: np.ndarray, *, kl: float = 1.0, kc: float = 1.0,
              kh: float = 1.0) -> np.ndarray:
    """CIEDE2000 colour difference (Sharma et al. 2005) of Lab arrays (..., 3) -> (...) float64."""
    lab1 = np.asarray(lab1, dtype=np.float64)
    lab2 = np.asarray(lab2, dtype=np.float64)
    if lab1.shape[-1] != 3 or lab2.shape[-1] != 3:
        raise ValueError(f"expected Lab arrays (..., 3), got {lab1.shape} and {lab2.shape}")
    l1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    l2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]

    # (2)-(7): a' stretches a according to the mean chroma; C', h' (degrees in [0, 360)).
    c_mean = 0.5 * (np.hypot(a1, b1) + np.hypot(a2, b2))
    c7 = c_mean**7
    g = 0.5 * (1.0 - np.sqrt(c7 / (c7 + 25.0**7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360.0
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360.0
    h1p = np.where(c1p == 0, 0.0, h1p)  # Sharma: h' = 0 when a' = b = 0
    h2p = np.where(c2p == 0, 0.0, h2p)

    # (8)-(10): differences; the hue difference is 0 when either chroma is 0.
    dl = l2 - l1
    dc = c2p - c1p
    cc = c1p * c2p
    dh = h2p - h1p
    dh = np.where(dh > 180.0, dh - 360.0, np.where(dh < -180.0, dh + 360.0, dh))
    dh = np.where(cc == 0, 0.0, dh)
    dhh = 2.0 * np.sqrt(cc) * np.sin(np.radians(dh) / 2.0)

    # (12)-(22): weighting functions.
    l_mean = 0.5 * (l1 + l2)
    cp_mean = 0.5 * (c1p + c2p)
    h_sum = h1p + h2p
    far = np.abs(h1p - h2p) > 180.0
    hp_mean = np.where(far, np.where(h_sum < 360.0, (h_sum + 360.0) / 2.0, (h_sum - 360.0) / 2.0), h_sum / 2.0)
    hp_mean = np.where(cc == 0, h_sum, hp_mean)
    hr = np.radians(hp_mean)
    t = (1.0 - 0.17 * np.cos(hr - np.radians(30.0)) + 0.24 * np.cos(2.0 * hr)
         + 0.32 * np.cos(3.0 * hr + np.radians(6.0)) - 0.20 * np.cos(4.0 * hr - np.radians(63.0)))
    d_theta = 30.0 * np.exp(-(((hp_mean - 275.0) / 25.0) ** 2))
    cp7 = cp_mean**7
    rc = 2.0 * np.sqrt(cp7 / (cp7 + 25.0**7))
    sl = 1.0 + 0.015 * (l_mean - 50.0) ** 2 / np.sqrt(20.0 + (l_mean - 50.0) ** 2)
    sc = 1.0 + 0.045 * cp_mean
    sh = 1.0 + 0.015 * cp_mean * t
    rt = -np.sin(np.radians(2.0 * d_theta)) * rc

    lt, ct, ht = dl / (kl * sl), dc / (kc * sc), dhh / (kh * sh)
    return np.sqrt(np.maximum(lt**2 + ct**2 + ht**2 + rt * ct * ht, 0.0))


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk's colourfulness M of an RGB picture (uint8, or float in 0..255)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB picture, got shape {rgb.shape}")
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg = r - g
    yb = 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def pixel_accuracy(lab_pred: np.ndarray, lab_truth: np.ndarray, *, l_tol: float = ACCURACY_L_TOL,
                   ab_tol: float = ACCURACY_AB_TOL) -> float:
    """Fraction of pixels whose L is within l_tol and whose a and b are each within ab_tol."""
    d = np.abs(np.asarray(lab_pred, np.float64) - np.asarray(lab_truth, np.float64))
    right = (d[..., 0] <= l_tol) & (d[..., 1] <= ab_tol) & (d[..., 2] <= ab_tol)
    return float(right.mean())


def ab_error(lab_pred: np.ndarray, lab_truth: np.ndarray) -> np.ndarray:
    """Per-pixel Euclidean distance in the ab plane (Lab units), float64."""
    d = np.asarray(lab_pred, np.float64)[..., 1:3] - np.asarray(lab_truth, np.float64)[..., 1:3]
    return np.hypot(d[..., 0], d[..., 1])


def ab_accuracy_curve(error: np.ndarray, max_error: int = AUC_MAX_ERROR) -> np.ndarray:
    """Fraction of pixels with ab error <= t for t = 0, 1, ..., max_error: (max_error + 1,) float64."""
    e = np.asarray(error, np.float64).ravel()
    # For an integer t, e <= t exactly when ceil(e) <= t: one bincount instead of max_error comparisons.
    bins = np.minimum(np.ceil(e), max_error + 1).astype(np.intp)
    return np.cumsum(np.bincount(bins, minlength=max_error + 2)[: max_error + 1]) / max(e.size, 1)


def ab_auc(lab_pred: np.ndarray, lab_truth: np.ndarray, *, max_error: int = AUC_MAX_ERROR) -> float:
    """Area under the cumulative ab-error curve on 0..max_error, normalised to [0, 1] (trapezoidal rule)."""
    curve = ab_accuracy_curve(ab_error(lab_pred, lab_truth), max_error)
    return float((curve.sum() - 0.5 * (curve[0] + curve[-1])) / max_error)


@dataclass(frozen=True)
class Reference:
    """A ground-truth picture with what every score against it needs, computed once."""

    rgb: np.ndarray  # (H, W, 3) uint8 RGB
    lab: np.ndarray  # (H, W, 3) float32 Lab
    colourfulness: float

    @classmethod
    def of(cls, rgb: np.ndarray) -> Reference:
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected a uint8 (H, W, 3) RGB picture, got {rgb.dtype} {rgb.shape}")
        return cls(rgb=rgb, lab=color.rgb_to_lab(rgb), colourfulness=colourfulness(rgb))


def score(pred: np.ndarray, truth: np.ndarray | Reference) -> dict[str, float]:
    """All per-picture scores of a uint8 RGB prediction against its ground truth.

    Keys: psnr, ssim, ciede2000, colourfulness (of the prediction), colourfulness_truth,
    colourfulness_ratio (this picture's M ratio; NaN when the truth has M == 0), accuracy, auc.
    """
    ref = truth if isinstance(truth, Reference) else Reference.of(truth)
    _check_pair(pred, ref.rgb)
    if pred.dtype != np.uint8:
        raise ValueError(f"expected a uint8 prediction, got {pred.dtype}")
    lab = color.rgb_to_lab(pred)
    m = colourfulness(pred)
    return {
        "psnr": psnr(pred, ref.rgb),
        "ssim": ssim(pred, ref.rgb),
        "ciede2000": float(ciede2000(lab, ref.lab).mean()),
        "colourfulness": m,
        "colourfulness_truth": ref.colourfulness,
        "colourfulness_ratio": m / ref.colourfulness if ref.colourfulness > 0 else float("nan"),
        "accuracy": pixel_accuracy(lab, ref.lab),
        "auc": ab_auc(lab, ref.lab),
    }


def aggregate(scores: list[dict[str, float]]) -> dict[str, float]:
    """Per-picture scores -> data-set scores: means over pictures, except the colourfulness ratio.

    colourfulness_ratio = mean colourfulness of the predictions / mean colourfulness of the truths
    (NaN when every truth is gray).
    """
    if not scores:
        raise ValueError("no scores to aggregate")
    out = {key: float(np.mean([s[key] for s in scores])) for key in
           ("psnr", "ssim", "ciede2000", "accuracy", "auc", "colourfulness", "colourfulness_truth")}
    truth_m = out["colourfulness_truth"]
    out["colourfulness_ratio"] = out["colourfulness"] / truth_m if truth_m > 0 else float("nan")
    return out
