"""Small labcolor checkpoints for the exporter tests, built without training.

TrainState.create + .checkpoint give the exact dict layout `colorize train` writes. The
weights are then perturbed away from their initial values (BatchNorm running statistics
and affine parameters included), so BatchNorm folding, instance norm and the outputs'
range are exercised the way a trained model would exercise them: a fresh init has
BatchNorm statistics of (0, 1), whose folding is a no-op, and near-zero outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from labcolor.trainer.checkpoint import save_atomic
from labcolor.trainer.config import TrainConfig
from labcolor.trainer.train import TrainState

TINY = dict(size=32, depth=4, base_channels=8, max_channels=32)  # size multiple 16; exports in a few seconds

METRICS = {
    "epoch": 3,
    "step": 42,
    "g_l1": 0.11,
    "val_l1_ab": 9.5,
    "val_psnr": 23.25,
    "lr_d": None,
    "images_per_s": float("nan"),  # non-finite values must still give strict JSON metadata
    "time": "2026-01-02T03:04:05+00:00",
}


def perturb(net: nn.Module, seed: int) -> None:
    """Move weights and norm statistics away from their initial values, deterministically."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, (nn.BatchNorm2d, nn.InstanceNorm2d)):
                if mod.weight is not None:
                    mod.weight.copy_(torch.rand(mod.weight.shape, generator=gen) + 0.5)
                    mod.bias.copy_(torch.randn(mod.bias.shape, generator=gen) * 0.2)
                if getattr(mod, "running_mean", None) is not None:
                    mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=gen) * 0.2)
                    mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=gen) * 1.5 + 0.5)
            elif isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)) and mod.bias is not None:
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=gen) * 0.05)


def make_checkpoint(
    path: Path, *, seed: int = 0, data: str = "synthetic test pictures", best_de00: float | None = None,
    **overrides: Any,
) -> Path:
    """Write a labcolor checkpoint of a tiny generator; `overrides` are TrainConfig fields.

    With `best_de00`, its epoch is the best one so far (as in a best.pt), with that validation ΔE00.
    """
    fields = {**TINY, "init_std": None, "out": str(path.parent), "epochs": 5, **overrides}
    cfg = TrainConfig(**fields)
    torch.manual_seed(seed)
    state = TrainState.create(cfg, torch.device("cpu"))
    perturb(state.g, seed)
    state.epoch, state.step = METRICS["epoch"], METRICS["step"]
    if best_de00 is not None:
        state.best_epoch, state.best_de00 = state.epoch, best_de00
    save_atomic(state.checkpoint(data=data, metrics=dict(METRICS)), path)
    return path
