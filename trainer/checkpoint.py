"""One checkpoint dict per run: weights, optimiser/scheduler/scaler states, RNG, step and config.

Layout (a plain dict, loadable with `torch.load(weights_only=True)`):

    format            "labcolor-checkpoint"
    version           1
    labcolor_version  package version that wrote it
    config            TrainConfig.to_dict()
    generator         {"spec": GeneratorSpec.to_dict(), "state": state_dict}: the weights to deploy
                      (the moving average when the run uses --ema)
    generator_train   the live training weights of an --ema run (resume continues from them);
                      None or absent otherwise
    discriminator     {"spec": ..., "state": ...} or None (L1-only baseline)
    optim             {"g": ..., "d": ...|None, "sched_g": ..., "sched_d": ...|None, "scaler": ...}
    epoch, step       completed epochs, optimiser steps so far
    rng               {"torch": ByteTensor, "cuda": [ByteTensor] | None}
    metrics           the last epoch's metrics line
    best              {"epoch", "val_de00"}: the epoch with the lowest validation CIEDE2000 so far
                      (its checkpoint is best.pt beside checkpoint.pt); absent in older files
    data              a one-line description of the training data
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from labcolor.core.errors import ModelError
from labcolor.core.imageio import write_atomic
from labcolor.trainer.networks import GeneratorSpec, UNetGenerator, build_generator

FORMAT = "labcolor-checkpoint"
VERSION = 1


class CheckpointError(ModelError):
    """The file is not a labcolor checkpoint, or one this version cannot read."""


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save through runtime.imageio.write_atomic: a crash never leaves a torn checkpoint."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    write_atomic(Path(path), buf.getvalue(), fsync=True)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and check a checkpoint; weights_only=True so a crafted file cannot run code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message suggests retrying with weights_only=False, i.e. letting the file run code: never
        # pass that on. Keep only its diagnosis ("Unsupported global: ...", "Unsupported operand ...").
        text = str(exc)
        detail = text.split("WeightsUnpickler error:", 1)[-1].strip().splitlines()[0] if text else ""
        if "Unsupported global" not in text:  # corrupt or foreign bytes, not a refused object
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({detail or 'corrupt'})") from exc
        raise CheckpointError(
            f"{path}: refused: the file holds Python objects other than tensors and plain data, which a labcolor "
            "checkpoint never does (loading it could run code it contains); use a checkpoint written by "
            "`colorize train`"
        ) from exc
    except Exception as exc:  # torch raises many types for corrupt/foreign files
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({_first_line(exc)})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a labcolor checkpoint")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')} is not supported (expected {VERSION})")
    return ckpt


def _first_line(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {(str(exc).strip().splitlines() or [''])[0]}"


def generator_from_checkpoint(ckpt: dict[str, Any]) -> UNetGenerator:
    """Rebuild the generator from the checkpoint alone (spec + weights)."""
    g = ckpt["generator"]
    net = build_generator(GeneratorSpec(**g["spec"]))
    net.load_state_dict(g["state"])
    return net


def load_generator(path: Path) -> tuple[UNetGenerator, dict[str, Any]]:
    """(generator in eval mode, checkpoint dict) from a checkpoint path."""
    ckpt = load_checkpoint(path)
    net = generator_from_checkpoint(ckpt)
    net.eval()
    return net, ckpt
