"""The training configuration: one flat, commented dataclass (nanoGPT style).

Defaults reproduce the classic CIFAR-10 GAN colorization setup (Nazeri et al. 2018 on
top of pix2pix, Isola et al. 2017): 32x32 Lab images, U-Net generator, a global
discriminator, vanilla GAN loss with one-sided label smoothing (real = 0.9), L1 weighted
by lambda = 100, Adam(2e-4, beta1 = 0.5), batch 128, 200 epochs.

The whole config is stored in every checkpoint, so a run is rebuilt from its checkpoint
alone and `--resume` can refuse changes that would make it a different run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Literal, TypeVar

from labcolor.core.errors import ConfigError
from labcolor.trainer.specs import DiscriminatorSpec, GeneratorSpec

T = TypeVar("T")

# Help panels of `colorize train --help`, one per section below.
DATA, GENERATOR, DISCRIMINATOR, LOSSES, OPTIMISATION, OUTPUT = (
    "Data", "Generator (U-Net)", "Discriminator", "Losses", "Optimisation", "Output",
)


def option(default: T, help: str, panel: str, *, path: bool = False) -> T:
    """A config field with its command-line help: `colorize train --<name>` is generated from it.

    The field's name, type (Literal types become choices), default, `help` and `panel` make the
    option (labcolor.commands.train), so adding an option is this one line. `path` marks a string
    that names a file or folder (the option then reads and shows a path).
    """
    return field(default=default, metadata={"help": help, "panel": panel, "path": path})


@dataclass
class TrainConfig:
    # ---- data
    data: str = option("data/cifar10", "Training pictures: a folder of colour photos (recursive), "
                       "cifar-10-python.tar.gz, or the extracted cifar-10-batches-py folder.", DATA, path=True)
    val: str | None = option(None, "Validation photos. Default: the CIFAR-10 test batch, or every 20th picture "
                             "held out of --data.", DATA, path=True)
    dataset: Literal["auto", "cifar10", "folder"] = option(
        "auto", "auto, cifar10 or folder (auto: CIFAR-10 if --data looks like it).", DATA)
    download: bool = option(False, "Download CIFAR-10 into --data (MD5-verified) if missing.", DATA)
    size: int = option(32, "Training crop size in px; a multiple of 2**depth.", DATA)  # square crops
    crop_scale: float = option(0.25, "Random resized crops keep at least this fraction of the area.", DATA)
    flip: bool = option(True, "Random horizontal flips.", DATA)
    val_fraction: float = option(0.05, "Fraction held out of a folder when --val is not given.", DATA)
    val_max_images: int = option(1000, "Validation metrics use at most this many images.", DATA)  # per epoch
    cache_mb: int = option(2048, "Keep decoded pictures in RAM when they fit in this many MB.", DATA)
    workers: int = option(2, "DataLoader worker processes (0: main process).", DATA)

    # ---- generator (U-Net)
    depth: int = option(5, "U-Net levels (32 px -> 5 reaches 1x1; pix2pix uses 8 at 256 px).", GENERATOR)
    base_channels: int = option(64, "Channels of the first level; doubles per level.", GENERATOR)
    max_channels: int = option(512, "Channel cap of deep levels.", GENERATOR)
    g_norm: Literal["batch", "instance", "none"] = option(
        "batch", "Generator norm: batch, instance or none.", GENERATOR)
    dropout: float = option(0.5, "pix2pix dropout near the bottleneck (0 disables).", GENERATOR)
    noise_channels: int = option(0, "Explicit noise input z: N(0,1) maps fed with L (0 disables).", GENERATOR)

    # ---- discriminator
    d_kind: Literal["patch", "global"] = option(
        "global", "global (one logit per image) or patch (PatchGAN).", DISCRIMINATOR)
    d_norm: Literal["batch", "instance", "spectral", "none"] = option(
        "batch", "batch, instance, spectral or none.", DISCRIMINATOR)
    d_base_channels: int = option(64, "D's first-layer width.", DISCRIMINATOR)
    d_layers: int = option(3, "PatchGAN layers (3: 70x70 patches).", DISCRIMINATOR)  # receptive field at 256 px
    d_conditional: bool = option(True, "D sees L and ab (pix2pix) rather than ab alone.", DISCRIMINATOR)
    # N(0, std) initialises G and D alike
    init_std: float | None = option(0.02, "N(0, std) weight init; omit for PyTorch's default.", DISCRIMINATOR)

    # ---- losses
    gan_loss: Literal["vanilla", "lsgan", "hinge"] = option("vanilla", "vanilla (BCE), lsgan or hinge.", LOSSES)
    # 0: no discriminator is built at all, nor trained
    adv_weight: float = option(1.0, "Adversarial weight; 0 trains the L1-only U-Net baseline.", LOSSES)
    l1_weight: float = option(100.0, "L1 weight (pix2pix lambda).", LOSSES)
    real_label: float = option(0.9, "D's real target; 0.9 = one-sided label smoothing.", LOSSES)  # 1.0 disables

    # ---- weight averaging
    # Exponential moving average of G's weights per step (0 disables; 0.999 averages over about
    # 1000 steps). Validation, samples, best.pt and export use the average: it smooths the GAN's
    # step-to-step oscillation, which generalises better than the last step's weights.
    ema: float = option(
        0.0, "EMA decay of G's weights per step; validation and export use the average (0: off).", OPTIMISATION)

    # ---- optimisation
    epochs: int = option(200, "Epochs in total (also when resuming).", OPTIMISATION)
    batch_size: int = option(128, "Images per step, per process: under torchrun the global batch is this x the "
                             "number of processes (the learning rate is not rescaled).", OPTIMISATION)
    lr_g: float = option(2e-4, "Generator learning rate.", OPTIMISATION)
    lr_d: float = option(2e-4, "Discriminator learning rate.", OPTIMISATION)
    beta1: float = option(0.5, "Adam beta1.", OPTIMISATION)
    beta2: float = option(0.999, "Adam beta2.", OPTIMISATION)
    lr_decay: Literal["none", "linear", "step"] = option("none", "none, linear or step.", OPTIMISATION)
    decay_start: int = option(100, "linear: epochs at full LR before decaying to 0.", OPTIMISATION)
    decay_every: int = option(50, "step: epochs between LR drops.", OPTIMISATION)
    decay_gamma: float = option(0.5, "step: LR multiplier per drop.", OPTIMISATION)
    amp: bool = option(True, "Mixed precision (CUDA only).", OPTIMISATION)  # ignored on other devices
    device: str = option("auto", "auto (cuda > mps > cpu), or e.g. cpu, cuda, cuda:1.", OPTIMISATION)
    seed: int = option(0, "Seed of weights, order and augmentation.", OPTIMISATION)

    # ---- output
    # checkpoint.pt, metrics.jsonl and samples/ go here (the command line derives it from --data and --size)
    out: str = option("runs/cifar10", "Run folder.", OUTPUT, path=True)
    sample_count: int = option(8, "Pictures in each epoch's sample grid.", OUTPUT)  # validation pictures

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        problems: list[str] = []
        if self.size <= 0 or self.size % (2**self.depth):
            problems.append(f"--size {self.size} must be a positive multiple of 2**depth = {2**self.depth}")
        if not 0.0 < self.crop_scale <= 1.0:
            problems.append(f"--crop-scale must be in (0, 1], got {self.crop_scale}")
        if not 0.0 < self.val_fraction < 1.0:
            problems.append(f"--val-fraction must be in (0, 1), got {self.val_fraction}")
        if self.epochs < 1 or self.batch_size < 1:
            problems.append("--epochs and --batch-size must be >= 1")
        if self.adv_weight < 0 or self.l1_weight < 0 or self.adv_weight == self.l1_weight == 0:
            problems.append("loss weights must be >= 0 and not both 0")
        if self.lr_decay == "linear" and not 0 <= self.decay_start < self.epochs:
            problems.append(f"--decay-start {self.decay_start} must be below --epochs {self.epochs} for linear decay")
        if not 0.0 <= self.ema < 1.0:
            problems.append(f"--ema must be in [0, 1), got {self.ema}")
        if self.workers < 0:
            problems.append("--workers must be >= 0")
        if problems:
            raise ConfigError("; ".join(problems))
        # The specs validate their own fields (norm names, dropout range, ...).
        try:
            self.generator_spec()
            if self.adversarial:
                self.discriminator_spec()
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

    @property
    def adversarial(self) -> bool:
        return self.adv_weight > 0

    def generator_spec(self) -> GeneratorSpec:
        return GeneratorSpec(
            depth=self.depth,
            base_channels=self.base_channels,
            max_channels=self.max_channels,
            norm=self.g_norm,
            dropout=self.dropout,
            noise_channels=self.noise_channels,
        )

    def discriminator_spec(self) -> DiscriminatorSpec:
        return DiscriminatorSpec(
            kind=self.d_kind,
            norm=self.d_norm,
            base_channels=self.d_base_channels,
            n_layers=self.d_layers,
            image_size=self.size,
            conditional=self.d_conditional,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        return cls(**d)


# Options that may change when a run is resumed: they affect where/how fast it runs or how
# long it goes on, not what the next step computes.
RESUMABLE_FIELDS = frozenset({"epochs", "device", "workers", "amp", "out", "download", "val_max_images", "cache_mb"})
