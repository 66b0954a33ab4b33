"""Adversarial losses (vanilla, LSGAN, hinge) with one-sided label smoothing, and the L1 term."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

GanMode = Literal["vanilla", "lsgan", "hinge"]
GAN_MODES: tuple[str, ...] = ("vanilla", "lsgan", "hinge")


class GANLoss:
    """D and G objectives on raw logits of any shape ((N, 1) global or (N, 1, h, w) patches).

    One-sided label smoothing (Salimans et al.): only D's *real* target moves
    (e.g. 1.0 -> 0.9); fake targets stay 0 and G's target stays 1. Hinge has no
    targets, so smoothing is rejected for it rather than silently ignored.
    """

    def __init__(self, mode: GanMode = "vanilla", real_label: float = 1.0) -> None:
        if mode not in GAN_MODES:
            raise ValueError(f"GAN loss must be one of {', '.join(GAN_MODES)}, got {mode!r}")
        if not 0.5 < real_label <= 1.0:
            raise ValueError(f"real label must be in (0.5, 1.0], got {real_label}")
        if mode == "hinge" and real_label != 1.0:
            raise ValueError("label smoothing has no meaning for the hinge loss; use --real-label 1.0")
        self.mode = mode
        self.real_label = real_label

    def _against(self, logits: torch.Tensor, target: float) -> torch.Tensor:
        t = torch.full_like(logits, target)
        if self.mode == "vanilla":
            return F.binary_cross_entropy_with_logits(logits, t)
        return F.mse_loss(logits, t)

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """D's loss, averaged over real and fake halves (pix2pix halves it so D learns slower than G)."""
        if self.mode == "hinge":
            return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())
        return 0.5 * (self._against(real_logits, self.real_label) + self._against(fake_logits, 0.0))

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        """G's adversarial loss (non-saturating for vanilla)."""
        if self.mode == "hinge":
            return -fake_logits.mean()
        return self._against(fake_logits, 1.0)


def l1_loss(pred_ab: torch.Tensor, target_ab: torch.Tensor) -> torch.Tensor:
    """Mean absolute error in network ab units, (N, 2, H, W)."""
    return F.l1_loss(pred_ab, target_ab)
