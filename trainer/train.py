"""The training loop: pix2pix-style conditional GAN (or plain L1 U-Net) in Lab space.

Per step, with L (N, 1, S, S) and real ab (N, 2, S, S) in network units:
    fake = G(L)
    D step: D([L, ab]) -> real, D([L, fake.detach()]) -> fake     (skipped when adv_weight == 0)
    G step: adv_weight * GAN(D([L, fake])) + l1_weight * |fake - ab|

Per epoch: validation L1/PSNR/CIEDE2000/colourfulness, a sample grid, an atomic checkpoint
(plus best.pt when val CIEDE2000 improved), one JSON metrics line.
`resume` restores weights, optimisers, schedulers, AMP scaler and RNG so the next step is
the one an uninterrupted run would have taken.

Launched by torchrun, the same loop trains data-parallel (trainer.distributed says what is
shared, synchronised and written by whom); `state.g` / `state.d` stay the bare modules, and
`g_train` / `d_train` are what the training step calls (their DDP wrappers when distributed).
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import math
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from labcolor import __version__ as labcolor_version
from labcolor.core.imageio import write_atomic
from labcolor.trainer import distributed
from labcolor.trainer.checkpoint import FORMAT, VERSION, load_checkpoint, save_atomic
from labcolor.trainer.config import RESUMABLE_FIELDS, ConfigError, TrainConfig
from labcolor.trainer.data import DataBundle, DataError, EpochSampler, build_data_for
from labcolor.trainer.losses import GANLoss, l1_loss
from labcolor.trainer.networks import (
    build_discriminator,
    build_generator,
    count_parameters,
)
from labcolor.trainer.runfiles import (
    BEST_NAME,
    CHECKPOINT_NAME,
    METRICS_NAME,
    SAMPLES_DIR,
)
from labcolor.trainer.validation import evaluate, sample_grid, write_png_atomic

log = logging.getLogger(__name__)



class TrainProgress(Protocol):
    """What the loop reports while it runs; the CLI draws a progress bar from it."""

    def epoch_start(self, epoch: int, epochs: int, batches: int) -> None: ...
    def step(self, images: int, losses: dict[str, float]) -> None: ...
    def epoch_end(self, metrics: dict[str, Any]) -> None: ...


class _Silent:
    def epoch_start(self, epoch: int, epochs: int, batches: int) -> None: ...
    def step(self, images: int, losses: dict[str, float]) -> None: ...
    def epoch_end(self, metrics: dict[str, Any]) -> None: ...


@dataclass
class TrainResult:
    out: Path
    checkpoint: Path
    metrics: dict[str, Any]
    best: Path | None  # best.pt (lowest val_de00), None when no epoch had validation pictures
    best_epoch: int


def resolve_device(name: str) -> torch.device:
    """auto -> cuda > mps > cpu; an explicit device that is not available is an error, not a fallback."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"--device {name!r} is not a torch device ({exc})") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available to this PyTorch build")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {name}: MPS is not available on this machine")
    return dev


def lr_lambda(cfg: TrainConfig):
    """Multiplier of the base LR after `epoch` completed epochs (scheduler steps once per epoch)."""

    def factor(epoch: int) -> float:
        if cfg.lr_decay == "linear":
            # pix2pix: constant for decay_start epochs, then linearly to 0 at the last epoch.
            return 1.0 - max(0, epoch - cfg.decay_start) / float(cfg.epochs - cfg.decay_start + 1)
        if cfg.lr_decay == "step":
            return cfg.decay_gamma ** (epoch // cfg.decay_every)
        return 1.0

    return factor


def _loader(ds, cfg: TrainConfig, sampler: EpochSampler, *, batch_size: int, drop_last: bool) -> DataLoader:
    # A private generator: worker seeding must not draw from the global RNG, or a resumed run
    # (whose loader starts at another point of the RNG stream) would diverge.
    gen = torch.Generator().manual_seed(cfg.seed)
    return DataLoader(
        ds,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=cfg.workers,
        drop_last=drop_last,
        persistent_workers=cfg.workers > 0,
        pin_memory=torch.cuda.is_available(),
        generator=gen,
    )


def _d_input(l_n: torch.Tensor, ab_n: torch.Tensor, conditional: bool) -> torch.Tensor:
    return torch.cat([l_n, ab_n], dim=1) if conditional else ab_n


def _rewrite_metrics(path: Path, upto_epoch: int) -> None:
    """On resume, drop metric lines of epochs the checkpoint does not contain (a crash after logging)."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["epoch"] <= upto_epoch]
    write_atomic(path, "".join(ln + "\n" for ln in keep).encode())


def merge_resume_config(saved: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """The checkpoint's config with the few options a resume may change; anything else is an error."""
    changed = {k: v for k, v in overrides.items() if getattr(saved, k) != v}
    refused = sorted(set(changed) - RESUMABLE_FIELDS)
    if refused:
        detail = ", ".join(f"{k} (checkpoint {getattr(saved, k)!r}, given {changed[k]!r})" for k in refused)
        raise ConfigError(f"--resume continues the same run; these options differ from the checkpoint: {detail}")
    return replace(saved, **changed)


@dataclass
class TrainState:
    """Models, optimisers and counters of one run: everything a checkpoint saves."""

    cfg: TrainConfig
    device: torch.device
    g: nn.Module
    d: nn.Module | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    sched_g: torch.optim.lr_scheduler.LambdaLR
    sched_d: torch.optim.lr_scheduler.LambdaLR | None
    scaler: torch.amp.GradScaler
    gan: GANLoss | None
    use_amp: bool
    g_ema: nn.Module | None = None  # the moving average of g (cfg.ema > 0): what is validated and exported
    group: distributed.Group = distributed.SINGLE
    g_train: nn.Module | None = None  # what train_step calls: g, or its DDP wrapper (set by create)
    d_train: nn.Module | None = None
    epoch: int = 0  # completed epochs
    step: int = 0  # optimiser steps taken
    best_de00: float = math.inf  # lowest val_de00 seen so far, and its epoch (0: none yet)
    best_epoch: int = 0

    @classmethod
    def create(cls, cfg: TrainConfig, device: torch.device,
               group: distributed.Group = distributed.SINGLE) -> TrainState:
        # Every rank builds the same initial weights from cfg.seed; DDP also broadcasts rank 0's.
        g = build_generator(cfg.generator_spec(), init_std=cfg.init_std)
        g = distributed.sync_batchnorm(g, group, device).to(device)
        d = build_discriminator(cfg.discriminator_spec(), init_std=cfg.init_std).to(device) if cfg.adversarial else None
        opt_g = torch.optim.Adam(g.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
        opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2)) if d is not None else None
        use_amp = cfg.amp and device.type == "cuda"
        return cls(
            group=group,
            g_train=distributed.wrap(g, group, device),
            d_train=distributed.wrap(d, group, device),
            cfg=cfg,
            device=device,
            g=g,
            d=d,
            opt_g=opt_g,
            opt_d=opt_d,
            sched_g=torch.optim.lr_scheduler.LambdaLR(opt_g, lr_lambda(cfg)),
            sched_d=torch.optim.lr_scheduler.LambdaLR(opt_d, lr_lambda(cfg)) if opt_d is not None else None,
            scaler=torch.amp.GradScaler("cuda", enabled=use_amp),
            gan=GANLoss(cfg.gan_loss, cfg.real_label) if cfg.adversarial else None,
            use_amp=use_amp,
            g_ema=copy.deepcopy(g).requires_grad_(False).eval() if cfg.ema > 0 else None,
        )

    @property
    def g_eval(self) -> nn.Module:
        """The generator that is validated, sampled, checkpointed as "generator" and exported."""
        return self.g_ema if self.g_ema is not None else self.g

    @functools.cached_property
    def _ema_pairs(self) -> tuple[list[torch.Tensor], list[torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]:
        """(averaged floats, live floats, (averaged, live) integer buffers): state_dict() returns views of
        the modules' own tensors, and loading a checkpoint copies into them, so these stay valid."""
        assert self.g_ema is not None
        pairs = list(zip(self.g_ema.state_dict().values(), self.g.state_dict().values()))
        floats = [(a, b) for a, b in pairs if a.dtype.is_floating_point]
        return [a for a, _ in floats], [b for _, b in floats], [(a, b) for a, b in pairs if not a.dtype.is_floating_point]

    @torch.no_grad()
    def update_ema(self) -> None:
        """g_ema <- decay * g_ema + (1 - decay) * g, over weights and float buffers (BatchNorm statistics).

        The decay ramps up from 0.1 over the first steps (as in timm's ModelEmaV2 warm-up), so the
        average does not drag the random initialisation along for thousands of steps.
        """
        if self.g_ema is None:
            return
        decay = min(self.cfg.ema, (1.0 + self.step) / (10.0 + self.step))
        averaged, live, counters = self._ema_pairs
        torch._foreach_lerp_(averaged, live, 1.0 - decay)  # one fused pass instead of a Python loop per tensor
        for avg, cur in counters:
            avg.copy_(cur)

    def checkpoint(self, *, data: str, metrics: dict[str, Any]) -> dict[str, Any]:
        d, opt_d, sched_d = self.d, self.opt_d, self.sched_d
        return {
            "format": FORMAT,
            "version": VERSION,
            "labcolor_version": labcolor_version,
            "config": self.cfg.to_dict(),
            "data": data,
            "generator": {"spec": self.cfg.generator_spec().to_dict(), "state": self.g_eval.state_dict()},
            # The live weights that training continues from; None without EMA (then they are "generator").
            "generator_train": self.g.state_dict() if self.g_ema is not None else None,
            "discriminator": (
                {"spec": self.cfg.discriminator_spec().to_dict(), "state": d.state_dict()} if d is not None else None
            ),
            "optim": {
                "g": self.opt_g.state_dict(),
                "d": opt_d.state_dict() if opt_d is not None else None,
                "sched_g": self.sched_g.state_dict(),
                "sched_d": sched_d.state_dict() if sched_d is not None else None,
                "scaler": self.scaler.state_dict(),
            },
            "epoch": self.epoch,
            "step": self.step,
            # Taken after validation and sampling (which draw no random numbers), so a resumed
            # run starts the next epoch from exactly this RNG state.
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
            },
            "metrics": metrics,
            "best": {"epoch": self.best_epoch, "val_de00": self.best_de00},
            "distributed": {"world": self.group.world},  # processes that trained it (resume may use another count)
        }

    def restore(self, ckpt: dict[str, Any]) -> None:
        self.g.load_state_dict(ckpt.get("generator_train") or ckpt["generator"]["state"])
        if self.g_ema is not None:
            self.g_ema.load_state_dict(ckpt["generator"]["state"])
        self.opt_g.load_state_dict(ckpt["optim"]["g"])
        self.sched_g.load_state_dict(ckpt["optim"]["sched_g"])
        if self.d is not None:
            self.d.load_state_dict(ckpt["discriminator"]["state"])
            self.opt_d.load_state_dict(ckpt["optim"]["d"])
            self.sched_d.load_state_dict(ckpt["optim"]["sched_d"])
        self.scaler.load_state_dict(ckpt["optim"]["scaler"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if self.device.type == "cuda" and ckpt["rng"]["cuda"] is not None:
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        self.epoch, self.step = ckpt["epoch"], ckpt["step"]
        best = ckpt.get("best") or {}  # absent in checkpoints written before best.pt existed
        self.best_de00, self.best_epoch = best.get("val_de00", math.inf), best.get("epoch", 0)


def train_step(state: TrainState, l_n: torch.Tensor, ab_n: torch.Tensor) -> dict[str, float]:
    """One optimiser step of D (if any) then G on L (N, 1, S, S) and ab (N, 2, S, S); returns the losses."""
    cfg, g, d, amp = state.cfg, state.g_train or state.g, state.d_train or state.d, state.use_amp
    dev = state.device.type
    l_n = l_n.to(state.device, non_blocking=True)
    ab_n = ab_n.to(state.device, non_blocking=True)
    with torch.autocast(dev, enabled=amp):
        fake = g(l_n)
    losses: dict[str, float] = {}

    if d is not None:
        # D step: real pairs vs generated pairs (G's graph detached).
        d.requires_grad_(True)
        with torch.autocast(dev, enabled=amp):
            # Two forwards, one backward: under DDP each parameter's gradient is still complete (and
            # averaged over ranks) once, when that backward has summed both uses.
            real_logits = d(_d_input(l_n, ab_n, cfg.d_conditional)).float()
            fake_logits = d(_d_input(l_n, fake.detach(), cfg.d_conditional)).float()
            loss_d = state.gan.discriminator(real_logits, fake_logits)
        state.opt_d.zero_grad(set_to_none=True)
        state.scaler.scale(loss_d).backward()
        state.scaler.step(state.opt_d)
        d.requires_grad_(False)  # G's step must not accumulate grads into D
        losses.update(d_loss=loss_d.item(), d_real=real_logits.detach().mean().item(), d_fake=fake_logits.detach().mean().item())

    with torch.autocast(dev, enabled=amp):
        loss_l1 = l1_loss(fake.float(), ab_n)
        loss_g = cfg.l1_weight * loss_l1
        if d is not None:
            # The bare D (not its DDP wrapper): its weights are frozen here, so no gradient of D is synchronised.
            loss_adv = state.gan.generator(state.d(_d_input(l_n, fake, cfg.d_conditional)).float())
            loss_g = loss_g + cfg.adv_weight * loss_adv
            losses["g_adv"] = loss_adv.item()
    state.opt_g.zero_grad(set_to_none=True)
    state.scaler.scale(loss_g).backward()
    state.scaler.step(state.opt_g)
    state.scaler.update()
    losses["g_l1"] = loss_l1.item()
    state.step += 1
    state.update_ema()
    return losses


def train(cfg: TrainConfig, *, resume: Path | None = None, progress: TrainProgress | None = None) -> TrainResult:
    """Train (or resume) the run described by `cfg`; returns where its outputs are.

    Under torchrun (RANK / WORLD_SIZE set) every rank runs this; see trainer.distributed.
    """
    group = distributed.from_environment()
    device = distributed.rank_device(group, resolve_device(cfg.device))
    distributed.start(group, device)
    try:
        return _train(cfg, group, device, resume=resume, progress=progress if group.main else None)
    finally:
        distributed.stop(group)


def _rank_seed(seed: int, epoch: int, rank: int) -> int:
    """Per-rank, per-epoch seed of torch's RNG (dropout) in a distributed run: different ranks draw
    different masks, and a resumed run re-creates exactly the streams of the epochs it repeats."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def _train(cfg: TrainConfig, group: distributed.Group, device: torch.device, *, resume: Path | None,
           progress: TrainProgress | None) -> TrainResult:
    progress = progress or _Silent()
    ckpt = load_checkpoint(resume) if resume is not None else None
    out = Path(cfg.out)
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    data: DataBundle = build_data_for(cfg)
    if len(data.train) < cfg.batch_size * group.world:
        raise DataError(f"{cfg.data}: {len(data.train)} training images, fewer than --batch-size {cfg.batch_size}"
                        + (f" x {group.world} processes" if group.distributed else ""))
    if group.main:
        log.info("data: %s", data.description)

    state = TrainState.create(cfg, device, group)
    if group.main:
        log.info("generator: %d parameters; discriminator: %s", count_parameters(state.g),
                 count_parameters(state.d) if state.d is not None else "none (L1-only)")
        if group.distributed:
            log.info("data-parallel: %d processes (%s), batch %d each, global batch %d", group.world,
                     "NCCL" if device.type == "cuda" else "gloo", cfg.batch_size, cfg.batch_size * group.world)
    metrics: dict[str, Any] = {}
    if ckpt is not None:
        state.restore(ckpt)
        metrics = ckpt["metrics"]
        if group.main:
            _rewrite_metrics(out / METRICS_NAME, state.epoch)
            saved_world = (ckpt.get("distributed") or {}).get("world", 1)
            log.info("resumed %s at epoch %d, step %d", resume, state.epoch, state.step)
            if saved_world != group.world:
                log.warning("the checkpoint was written by %d process(es), this run has %d: weights, optimisers, "
                            "schedules and the epoch count continue exactly; the global batch becomes %d (was %d) "
                            "and each step's pictures and dropout draws differ from an uninterrupted run",
                            saved_world, group.world, cfg.batch_size * group.world, cfg.batch_size * saved_world)

    train_sampler = EpochSampler(len(data.train), seed=cfg.seed, shuffle=True, rank=group.rank, world=group.world)
    train_loader = _loader(data.train, cfg, train_sampler, batch_size=cfg.batch_size, drop_last=True)
    val_loader = _loader(data.val, cfg, EpochSampler(len(data.val), seed=cfg.seed, shuffle=False),
                         batch_size=cfg.batch_size, drop_last=False)
    sample_items = [data.val[i] for i in range(min(cfg.sample_count, len(data.val)))]
    sample_l = torch.stack([it[0] for it in sample_items])
    sample_ab = torch.stack([it[1] for it in sample_items])

    if group.main:
        out.mkdir(parents=True, exist_ok=True)
    for epoch in range(state.epoch, cfg.epochs):
        train_sampler.set_epoch(epoch)
        if group.distributed:
            torch.manual_seed(_rank_seed(cfg.seed, epoch, group.rank))
        state.g.train()
        if state.d is not None:
            state.d.train()
        sums: dict[str, float] = {}
        batches, images, t0 = 0, 0, time.perf_counter()
        progress.epoch_start(epoch + 1, cfg.epochs, len(train_loader))
        for l_n, ab_n in train_loader:
            losses = train_step(state, l_n, ab_n)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
            batches += 1
            images += len(l_n)
            progress.step(len(l_n) * group.world, losses)
        seconds = time.perf_counter() - t0
        state.sched_g.step()
        if state.sched_d is not None:
            state.sched_d.step()
        state.epoch = epoch + 1
        losses = distributed.mean_over_ranks({k: v / max(batches, 1) for k, v in sums.items()}, group, device)
        if not group.main:
            distributed.barrier(group)  # rank 0 validates and writes; wait so every rank starts the next epoch together
            continue

        metrics = {
            "epoch": state.epoch,
            "step": state.step,
            **losses,
            **evaluate(state.g_eval, val_loader, device, cfg.val_max_images),
            "lr_g": state.opt_g.param_groups[0]["lr"],
            "lr_d": state.opt_d.param_groups[0]["lr"] if state.opt_d is not None else None,
            "images_per_s": images * group.world / seconds if seconds > 0 else math.nan,
            "epoch_seconds": seconds,
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        write_png_atomic(sample_grid(state.g_eval, sample_l, sample_ab, device),
                         out / SAMPLES_DIR / f"epoch_{state.epoch:04d}.png")
        improved = metrics["val_de00"] < state.best_de00  # False for NaN: no val pictures, no best.pt
        if improved:
            state.best_de00, state.best_epoch = metrics["val_de00"], state.epoch
        ckpt = state.checkpoint(data=data.description, metrics=metrics)
        if improved:
            save_atomic(ckpt, out / BEST_NAME)
        save_atomic(ckpt, out / CHECKPOINT_NAME)
        with open(out / METRICS_NAME, "a") as f:
            f.write(json.dumps(metrics) + "\n")
        log.debug("epoch %d: %s", state.epoch, json.dumps(metrics))
        progress.epoch_end(metrics)
        distributed.barrier(group)
    best = out / BEST_NAME if state.best_epoch else None
    return TrainResult(out=out, checkpoint=out / CHECKPOINT_NAME, metrics=metrics, best=best, best_epoch=state.best_epoch)
