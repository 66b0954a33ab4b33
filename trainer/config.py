"""The training configuration: one flat, commented dataclass (nanoGPT style).

Defaults reproduce the classic CIFAR-10 GAN colorization setup (Nazeri et al. 2018 on
top of pix2pix, Isola et al. 2017): 32x32 Lab images, U-Net generator, a global
discriminator, vanilla GAN loss with one-sided label smoothing (real = 0.9), L1 weighted
by lambda = 100, Adam(2e-4, beta1 = 0.5), batch 128, 200 epochs.

The whole config is stored in every checkpoint, so a run is rebuilt from its checkpoint
alone and `--resume` can refuse changes that would make it a different run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Literal

from labcolor.core.errors import ConfigError
from labcolor.trainer.specs import DiscriminatorSpec, GeneratorSpec


@dataclass
class TrainConfig:
    # ---- data
    data: str = "data/cifar10"  # folder of colour photos, CIFAR-10 archive, or its extracted folder
    val: str | None = None  # validation photos; None: CIFAR test batch, or a held-out slice of a folder
    dataset: Literal["auto", "cifar10", "folder"] = "auto"  # auto: CIFAR if the path looks like it
    download: bool = False  # fetch CIFAR-10 into `data` (MD5-verified) if it is missing
    size: int = 32  # training crop size in px (square); a multiple of 2**depth
    crop_scale: float = 0.25  # random resized crop: smallest crop area as a fraction of the picture
    flip: bool = True  # random horizontal flips
    val_fraction: float = 0.05  # held out from a folder when no --val is given
    val_max_images: int = 1000  # validation metrics on at most this many images per epoch
    cache_mb: int = 2048  # keep decoded images in RAM when the set fits in this budget
    workers: int = 2  # DataLoader worker processes (0: load in the main process)

    # ---- generator (U-Net)
    depth: int = 5  # stride-2 levels: 32 -> 1x1 bottleneck; 8 for 256px as in pix2pix
    base_channels: int = 64  # width of the first level; doubles per level
    max_channels: int = 512  # width cap of the deep levels
    g_norm: Literal["batch", "instance", "none"] = "batch"
    dropout: float = 0.5  # pix2pix dropout in the decoder levels next to the bottleneck (0 disables)
    noise_channels: int = 0  # explicit noise input z: N(0,1) maps concatenated to L (0 disables)

    # ---- discriminator
    d_kind: Literal["patch", "global"] = "global"  # global: one logit per image; patch: PatchGAN
    d_norm: Literal["batch", "instance", "spectral", "none"] = "batch"
    d_base_channels: int = 64
    d_layers: int = 3  # PatchGAN depth (3: 70x70 receptive field at 256px)
    d_conditional: bool = True  # D sees L and ab (pix2pix) instead of ab alone
    init_std: float | None = 0.02  # N(0, std) init of G and D; None keeps PyTorch's default init

    # ---- losses
    gan_loss: Literal["vanilla", "lsgan", "hinge"] = "vanilla"
    adv_weight: float = 1.0  # 0 trains the plain L1 U-Net baseline (no discriminator at all)
    l1_weight: float = 100.0  # pix2pix lambda
    real_label: float = 0.9  # one-sided label smoothing of D's real target (1.0 disables)

    # ---- weight averaging
    # Exponential moving average of G's weights per step (0 disables; 0.999 averages over about
    # 1000 steps). Validation, samples, best.pt and export use the average: it smooths the GAN's
    # step-to-step oscillation, which generalises better than the last step's weights.
    ema: float = 0.0

    # ---- optimisation
    epochs: int = 200
    batch_size: int = 128
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_decay: Literal["none", "linear", "step"] = "none"
    decay_start: int = 100  # linear: constant LR for this many epochs, then linearly to 0 at `epochs`
    decay_every: int = 50  # step: multiply the LR by decay_gamma every this many epochs
    decay_gamma: float = 0.5
    amp: bool = True  # mixed precision, used on CUDA only
    device: str = "auto"  # auto: cuda > mps > cpu; or an explicit torch device string
    seed: int = 0

    # ---- output
    out: str = "runs/cifar10"  # checkpoint.pt, metrics.jsonl and samples/ go here
    sample_count: int = 8  # validation images shown in each epoch's sample grid

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
