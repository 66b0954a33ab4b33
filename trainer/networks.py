"""Generator (recursive U-Net) and discriminators (PatchGAN, global) for Lab colorization.

Every network is described by a small frozen dataclass (its *spec*). The spec is all a
checkpoint needs to rebuild the module, so `build_generator(GeneratorSpec(**d))` is the
one way to construct a generator, in training, export and tests alike.

Shapes: the generator maps L_n (N, 1, H, W) -> ab_n (N, 2, H, W) with H and W multiples
of 2**depth. Discriminators map (N, C, H, W) -> logits: (N, 1, h, w) for PatchGAN,
(N, 1) for the global one, with C = 3 (L + ab, conditional) or 2 (ab only).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from labcolor.trainer.specs import NORMS, DiscriminatorSpec, GeneratorSpec

def _feature_norm(norm: str, channels: int) -> nn.Module:
    """The activation-normalisation layer for `norm` (spectral norm acts on weights instead)."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        # affine=True so instance norm has the same learnable scale/shift as batch norm.
        return nn.InstanceNorm2d(channels, affine=True)
    if norm in ("spectral", "none"):
        return nn.Identity()
    raise ValueError(f"unknown normalization {norm!r}; choose one of {', '.join(NORMS)}")


def _weight_wrap(norm: str) -> Callable[[nn.Module], nn.Module]:
    """Spectral norm is torch's own parametrization; the other norms leave the weight alone."""
    return spectral_norm if norm == "spectral" else (lambda m: m)


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """pix2pix/DCGAN init: conv weights ~ N(0, std), norm scales ~ N(1, std), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            # With spectral norm the raw weight lives in parametrizations.weight.original.
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


# --------------------------------------------------------------------------- generator


class UNetBlock(nn.Module):
    """One U-Net level wrapping the levels below it: x -> [x, up(sub(down(x)))] (pix2pix's recursive block).

    down: Conv 4x4/2 halves H, W; up: ConvTranspose 4x4/2 doubles them back. The
    outermost block returns the output directly (no skip concat) through tanh.
    """

    def __init__(
        self,
        outer: int,
        inner: int,
        *,
        sub: nn.Module | None,
        norm: str,
        in_channels: int | None = None,
        out_channels: int | None = None,
        outermost: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        in_c = in_channels if in_channels is not None else outer
        use_bias = norm != "batch"  # batch norm's shift makes a conv bias redundant
        down_conv = nn.Conv2d(in_c, inner, 4, 2, 1, bias=use_bias)
        innermost = sub is None
        up_in = inner if innermost else inner * 2  # below the innermost level there is no skip concat

        if outermost:
            down = [down_conv]
            up = [nn.ReLU(True), nn.ConvTranspose2d(up_in, out_channels or outer, 4, 2, 1), nn.Tanh()]
        elif innermost:
            down = [nn.LeakyReLU(0.2, True), down_conv]
            up = [nn.ReLU(True), nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=use_bias), _feature_norm(norm, outer)]
        else:
            down = [nn.LeakyReLU(0.2, True), down_conv, _feature_norm(norm, inner)]
            up = [nn.ReLU(True), nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=use_bias), _feature_norm(norm, outer)]
        if dropout > 0:
            up.append(nn.Dropout(dropout))
        self.model = nn.Sequential(*down, *([sub] if sub is not None else []), *up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], dim=1)


class UNetGenerator(nn.Module):
    """L_n (N, 1, H, W) -> ab_n (N, 2, H, W) in [-1, 1]."""

    def __init__(self, spec: GeneratorSpec) -> None:
        super().__init__()
        self.spec = spec
        # Channels per level from the outside in: base, 2*base, 4*base, ... capped at max_channels.
        widths = [min(spec.base_channels * 2**i, spec.max_channels) for i in range(spec.depth)]
        block: nn.Module | None = None
        # Build inside-out: level depth-1 is the innermost (bottleneck at H / 2**depth).
        for level in range(spec.depth - 1, 0, -1):
            # pix2pix puts dropout on the `dropout_levels` decoder levels just above the
            # innermost one (from_bottom 0); the outer levels stay deterministic.
            from_bottom = spec.depth - 1 - level
            drop = spec.dropout if 1 <= from_bottom <= spec.dropout_levels else 0.0
            block = UNetBlock(widths[level - 1], widths[level], sub=block, norm=spec.norm, dropout=drop)
        self.model = UNetBlock(
            spec.out_channels,
            widths[0],
            sub=block,
            norm=spec.norm,
            in_channels=spec.in_channels + spec.noise_channels,
            out_channels=spec.out_channels,
            outermost=True,
        )

    def forward(self, l_n: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if self.spec.noise_channels:
            if z is None:
                n, _, h, w = l_n.shape
                shape = (n, self.spec.noise_channels, h, w)
                # Deterministic in eval (export, validation); stochastic while training.
                z = torch.randn(shape, device=l_n.device, dtype=l_n.dtype) if self.training else l_n.new_zeros(shape)
            l_n = torch.cat([l_n, z], dim=1)
        return self.model(l_n)


def build_generator(spec: GeneratorSpec, *, init_std: float | None = None) -> UNetGenerator:
    net = UNetGenerator(spec)
    if init_std is not None:
        init_weights(net, init_std)
    return net


# ------------------------------------------------------------------------ discriminators


def _d_block(in_c: int, out_c: int, stride: int, norm: str, *, first: bool = False) -> list[nn.Module]:
    """Conv 4x4 [+ norm] + LeakyReLU(0.2); the first block has no norm (pix2pix / DCGAN)."""
    wrap = _weight_wrap(norm)
    conv = wrap(nn.Conv2d(in_c, out_c, 4, stride, 1, bias=first or norm != "batch"))
    layers: list[nn.Module] = [conv]
    if not first:
        layers.append(_feature_norm(norm, out_c))
    layers.append(nn.LeakyReLU(0.2, True))
    return layers


class PatchDiscriminator(nn.Module):
    """PatchGAN: (N, C, H, W) -> (N, 1, h, w), one logit per overlapping patch."""

    def __init__(self, spec: DiscriminatorSpec) -> None:
        super().__init__()
        c = spec.base_channels
        layers = _d_block(spec.in_channels, c, 2, spec.norm, first=True)
        mult = 1
        for i in range(1, spec.n_layers + 1):
            prev, mult = mult, min(2**i, 8)
            # The last feature layer keeps stride 1, as in pix2pix, so the patch grid stays dense.
            layers += _d_block(c * prev, c * mult, 2 if i < spec.n_layers else 1, spec.norm)
        layers.append(_weight_wrap(spec.norm)(nn.Conv2d(c * mult, 1, 4, 1, 1)))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class GlobalDiscriminator(nn.Module):
    """Whole-image D (the CIFAR-10 GAN design): (N, C, S, S) -> (N, 1)."""

    def __init__(self, spec: DiscriminatorSpec) -> None:
        super().__init__()
        if spec.image_size < 8 or spec.image_size & (spec.image_size - 1):
            raise ValueError(f"global discriminator needs a power-of-two image_size >= 8, got {spec.image_size}")
        n_down = int(math.log2(spec.image_size)) - 2  # S -> 4x4
        c = spec.base_channels
        layers = _d_block(spec.in_channels, c, 2, spec.norm, first=True)
        width = c
        for _ in range(n_down - 1):
            nxt = min(width * 2, c * 8)
            layers += _d_block(width, nxt, 2, spec.norm)
            width = nxt
        self.features = nn.Sequential(*layers)
        self.head = _weight_wrap(spec.norm)(nn.Linear(width * 16, 1))
        self.image_size = spec.image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(f"global discriminator was built for {self.image_size}px, got {tuple(x.shape[-2:])}")
        return self.head(self.features(x).flatten(1))


def build_discriminator(spec: DiscriminatorSpec, *, init_std: float | None = None) -> nn.Module:
    net: nn.Module = PatchDiscriminator(spec) if spec.kind == "patch" else GlobalDiscriminator(spec)
    if init_std is not None:
        init_weights(net, init_std)
    return net


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
