"""Per-epoch validation and sample grids of a training run (what metrics.jsonl and samples/ hold).

The scores use the definitions of `colorize eval` (core.metrics) on validation centre crops, so
checkpoints can be chosen on the default model's acceptance metrics.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from labcolor.core import color
from labcolor.core.imageio import write_atomic
from labcolor.core.metrics import ciede2000, colourfulness, psnr


def _to_hwc(t: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) tensor -> (N, H, W, C) float32 array."""
    return t.detach().float().cpu().numpy().transpose(0, 2, 3, 1)


@torch.no_grad()
def evaluate(g: nn.Module, loader: DataLoader, device: torch.device, max_images: int) -> dict[str, float]:
    """Validation scores over at most `max_images` images, on the same definitions as `colorize eval`.

    val_l1_ab: mean |ab error| in Lab units; val_psnr: mean RGB PSNR (dB, capped at 100);
    val_de00: mean per-picture CIEDE2000; val_colourfulness: ratio of mean colourfulness,
    prediction / truth (runtime.metrics). The last two are the default model's acceptance metrics,
    so checkpoints can be chosen on them.
    """
    was_training = g.training
    g.eval()
    l1_sum, psnr_sum, de_sum, m_pred, m_truth, n = 0.0, 0.0, 0.0, 0.0, 0.0, 0
    for l_n, ab_n in loader:
        if n >= max_images:
            break
        take = min(len(l_n), max_images - n)
        l_n, ab_n = l_n[:take].to(device), ab_n[:take].to(device)
        fake = g(l_n).float()
        l1_sum += float((fake - ab_n).abs().mean(dim=(1, 2, 3)).sum()) * color.AB_SCALE
        l_hwc = _to_hwc(l_n)
        pred = color.network_to_rgb(l_hwc, _to_hwc(fake))
        truth = color.network_to_rgb(l_hwc, _to_hwc(ab_n))
        for p, t in zip(pred, truth):
            psnr_sum += psnr(p, t)  # capped (core.metrics), so one flat picture cannot make the mean infinite
            de_sum += float(ciede2000(color.rgb_to_lab(p), color.rgb_to_lab(t)).mean())
            m_pred += colourfulness(p)
            m_truth += colourfulness(t)
        n += take
    g.train(was_training)
    return {
        "val_l1_ab": l1_sum / max(n, 1),
        "val_psnr": psnr_sum / max(n, 1),
        "val_de00": de_sum / max(n, 1),
        "val_colourfulness": m_pred / m_truth if m_truth > 0 else math.nan,
        "val_images": n,
    }


@torch.no_grad()
def sample_grid(g: nn.Module, l_n: torch.Tensor, ab_n: torch.Tensor, device: torch.device) -> np.ndarray:
    """Rows of grayscale | ground truth | colorized, as one BGR uint8 image ready for imwrite."""
    was_training = g.training
    g.eval()
    fake = g(l_n.to(device)).float().cpu()
    g.train(was_training)
    l_hwc = _to_hwc(l_n)
    gray = color.network_to_rgb(l_hwc, np.zeros_like(_to_hwc(ab_n)), bgr=True)
    truth = color.network_to_rgb(l_hwc, _to_hwc(ab_n), bgr=True)
    pred = color.network_to_rgb(l_hwc, _to_hwc(fake), bgr=True)
    rows = [np.concatenate([a, b, c], axis=1) for a, b, c in zip(gray, truth, pred)]
    grid = np.concatenate(rows, axis=0)
    size = l_n.shape[-1]
    if size < 128:  # tiny CIFAR crops are unreadable at 1:1; nearest-neighbour keeps pixels honest
        k = 128 // size
        grid = cv2.resize(grid, None, fx=k, fy=k, interpolation=cv2.INTER_NEAREST)
    return grid


def write_png_atomic(img: np.ndarray, path: Path) -> None:
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    write_atomic(path, buf.tobytes())
