"""Network descriptions without torch: what a checkpoint stores to rebuild G and D.

Kept free of torch so the CLI can show the training defaults (and `colorize --help`
can start) without importing PyTorch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Norm = Literal["batch", "instance", "spectral", "none"]
GeneratorNorm = Literal["batch", "instance", "none"]
DiscriminatorKind = Literal["patch", "global"]

NORMS: tuple[str, ...] = ("batch", "instance", "spectral", "none")
GENERATOR_NORMS: tuple[str, ...] = ("batch", "instance", "none")
DISCRIMINATOR_KINDS: tuple[str, ...] = ("patch", "global")



@dataclass(frozen=True)
class GeneratorSpec:
    """Everything needed to rebuild a U-Net generator."""

    depth: int = 5  # number of stride-2 levels; H and W must be multiples of 2**depth
    base_channels: int = 64  # channels after the first conv; doubles per level up to max_channels
    max_channels: int = 512
    norm: GeneratorNorm = "batch"
    dropout: float = 0.5  # pix2pix's noise: dropout in the innermost `dropout_levels` decoder levels
    dropout_levels: int = 3
    noise_channels: int = 0  # >0: explicit z, a N(0,1) map concatenated to L while training (zeros in eval)
    in_channels: int = 1
    out_channels: int = 2

    def __post_init__(self) -> None:
        if self.depth < 2:
            raise ValueError(f"generator depth must be >= 2, got {self.depth}")
        if self.norm not in GENERATOR_NORMS:
            raise ValueError(f"generator norm must be one of {', '.join(GENERATOR_NORMS)}, got {self.norm!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.noise_channels < 0:
            raise ValueError(f"noise_channels must be >= 0, got {self.noise_channels}")

    @property
    def size_multiple(self) -> int:
        return 2**self.depth

    def to_dict(self) -> dict:
        return asdict(self)



@dataclass(frozen=True)
class DiscriminatorSpec:
    """Everything needed to rebuild a discriminator."""

    kind: DiscriminatorKind = "patch"
    norm: Norm = "batch"
    base_channels: int = 64
    n_layers: int = 3  # PatchGAN: stride-2 convs after the first (3 -> 70x70 receptive field)
    image_size: int = 256  # global D: strided convs until the map is <= 4x4, then one linear logit
    conditional: bool = True  # sees L and ab (3 channels) rather than ab alone (2)

    def __post_init__(self) -> None:
        if self.kind not in DISCRIMINATOR_KINDS:
            raise ValueError(f"discriminator must be one of {', '.join(DISCRIMINATOR_KINDS)}, got {self.kind!r}")
        if self.norm not in NORMS:
            raise ValueError(f"discriminator norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {self.n_layers}")

    @property
    def in_channels(self) -> int:
        return 3 if self.conditional else 2

    def to_dict(self) -> dict:
        return asdict(self)
