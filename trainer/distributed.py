"""Data-parallel training under `torchrun` (PyTorch DistributedDataParallel).

    torchrun --nproc-per-node 4 -m labcolor train --data photos/ ...            # one machine, 4 GPUs
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d \\
             --rdzv-endpoint HOST:29500 -m labcolor train ...                    # on each of 2 machines

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them (or with WORLD_SIZE 1) training is
the single-process loop, unchanged. Choices, and why:
* Backend: NCCL when the ranks train on CUDA, gloo otherwise (CPU), picked from the device.
* Batch size is per process: the global batch is `--batch-size` x WORLD_SIZE. The learning rate
  is never rescaled behind the user's back (scale it yourself if you want the linear rule).
* BatchNorm: SyncBatchNorm on CUDA, so the statistics are those of the global batch, as in a
  single process running it (small per-GPU batches would otherwise normalise with noisy
  statistics). PyTorch's SyncBatchNorm runs on GPUs only, so on CPU each rank normalises with its
  own batch's statistics (running statistics are rank 0's: DDP broadcasts buffers each forward).
* Spectral norm's power-iteration vector is a buffer, broadcast from rank 0 in the same way, so
  every rank's discriminator uses the same normalisation.
* Only rank 0 validates, draws samples and writes checkpoints, best.pt and metrics; the other
  ranks wait for it at a barrier, so every rank starts each epoch at the same point.
* Per-rank randomness (dropout) is re-seeded from (seed, epoch, rank) at every epoch, so a
  resumed distributed run repeats exactly what the uninterrupted one did.
A rank that fails makes torchrun stop the others (their collectives would otherwise wait), and
the job ends with that rank's error.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from labcolor.trainer.config import ConfigError

log = logging.getLogger(__name__)

# A collective waits this long for the slowest rank (rank 0 validating, writing checkpoints) before it fails.
TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class Group:
    """This process's place in the job: one rank of `world` (world 1: not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """The rank that validates and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


SINGLE = Group()


def from_environment() -> Group:
    """The group torchrun describes in RANK / WORLD_SIZE / LOCAL_RANK, or SINGLE when not launched by it."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as exc:
        raise ConfigError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers ({exc})") from exc
    if world <= 1:
        return SINGLE
    return Group(rank, world, local_rank)


def rank_device(group: Group, device: torch.device) -> torch.device:
    """The device this rank trains on: its own GPU (LOCAL_RANK) on CUDA, else the requested device."""
    if group.distributed and device.type == "cuda":
        if device.index not in (None, 0):
            raise ConfigError("under torchrun each rank takes GPU LOCAL_RANK; pass --device cuda or auto, not cuda:N")
        if group.local_rank >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {group.local_rank} but only {torch.cuda.device_count()} GPU(s) visible")
        device = torch.device("cuda", group.local_rank)
        torch.cuda.set_device(device)
    return device


def start(group: Group, device: torch.device) -> None:
    """Join the process group: NCCL for CUDA ranks, gloo otherwise."""
    if not group.distributed or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, rank=group.rank, world_size=group.world, timeout=TIMEOUT,
                            device_id=device if device.type == "cuda" else None)
    log.debug("rank %d/%d joined (%s)", group.rank, group.world, backend)


def stop(group: Group) -> None:
    if group.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(group: Group) -> None:
    if group.distributed:
        dist.barrier()


def wrap(module: nn.Module | None, group: Group, device: torch.device) -> nn.Module | None:
    """`module` in DistributedDataParallel (gradients averaged over ranks), or itself when not distributed.

    The caller keeps the bare module for checkpoints (no `module.` prefixes) and evaluation.
    """
    if module is None or not group.distributed:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids, broadcast_buffers=True)


def sync_batchnorm(module: nn.Module, group: Group, device: torch.device) -> nn.Module:
    """BatchNorm layers as SyncBatchNorm on CUDA (global-batch statistics); unchanged on CPU (see module doc)."""
    if group.distributed and device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return module


def mean_over_ranks(values: dict[str, float], group: Group, device: torch.device) -> dict[str, float]:
    """Per-rank averages -> their mean over ranks (equal batch counts per rank: the global average)."""
    if not group.distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return {k: float(v) / group.world for k, v in zip(keys, t.tolist())}
