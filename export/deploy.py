"""The deployed form of a generator: exactly-equivalent rewrites made before export.

Each one is verified by the exporter's parity check:

* noise channel: in eval mode z is zeros, and a convolution over [L, 0] equals the same
  convolution with the z input channels of its kernel dropped. Dropping them removes the
  Shape/ConstantOfShape/Concat ops that built the zeros, which OpenCV DNN cannot run.
* int8 only: each ConvTranspose(4x4, stride 2, pad 1) becomes Conv(3x3, pad 1) with 4x the
  output channels + DepthToSpace (PixelShuffle): the four output phases of a stride-2
  transposed convolution are four 2x2 convolutions of the input. onnxruntime has fast
  int8 kernels for Conv but not for ConvTranspose, so this makes the decoder quantizable
  (BatchNorm is folded into the ConvTranspose first, as it cannot be folded through
  DepthToSpace). In fp32 it only costs time (2.25x the multiply-adds), so fp32 and fp16
  keep ConvTranspose, and so do the decoder levels that int8 keeps in float.

int8 and the output side of the decoder: measured on a model trained on photos, quantizing
the two outermost decoder levels cost ~1.5 of the ~1.9 Lab units of mean ab error (their
activations are heavy-tailed: max ~60 for a std ~3.5), while every other layer cost < 0.15.
So int8 export tries 0, 1, 2, 3, ... outermost decoder levels kept in float (as
ConvTranspose) and keeps the first that meets the error bound; the speed-up over fp32 on
CPU stayed 1.5-2x with up to 3 levels in float.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

from labcolor.export import ExportError
from labcolor.trainer.networks import UNetBlock, UNetGenerator

log = logging.getLogger(__name__)


class PhaseConvTranspose(nn.Sequential):
    """ConvTranspose2d(k=4, s=2, p=1) as Conv2d(3x3, pad 1, 4 * C_out) + PixelShuffle(2): the same function.

    Output pixel (2j + a, 2l + b) of the transposed conv only sees inputs j + dy, l + dx
    with kernel tap (a + 1 - 2 dy, b + 1 - 2 dx), for dy, dx in {-1, 0, 1} where the tap
    is inside 0..3. Phase (a, b) of output channel c becomes conv channel 4c + 2a + b,
    which is where PixelShuffle(2) (ONNX DepthToSpace, CRD mode) takes it from.
    """

    def __init__(self, convt: nn.ConvTranspose2d) -> None:
        if (
            convt.kernel_size != (4, 4) or convt.stride != (2, 2) or convt.padding != (1, 1)
            or convt.output_padding != (0, 0) or convt.dilation != (1, 1) or convt.groups != 1
        ):
            raise ExportError(f"cannot rewrite {convt}: only ConvTranspose2d(4, 2, 1) is supported")
        cin, cout = convt.in_channels, convt.out_channels
        w = convt.weight.detach()  # (cin, cout, 4, 4)
        k = torch.zeros(cout, 2, 2, cin, 3, 3, dtype=w.dtype)
        for a in (0, 1):
            for dy in (-1, 0, 1):
                ky = a + 1 - 2 * dy
                if not 0 <= ky <= 3:
                    continue
                for b in (0, 1):
                    for dx in (-1, 0, 1):
                        kx = b + 1 - 2 * dx
                        if 0 <= kx <= 3:
                            k[:, a, b, :, dy + 1, dx + 1] = w[:, :, ky, kx].T
        conv = nn.Conv2d(cin, 4 * cout, 3, 1, 1, bias=True)
        bias = convt.bias.detach() if convt.bias is not None else torch.zeros(cout, dtype=w.dtype)
        with torch.no_grad():
            conv.weight.copy_(k.reshape(4 * cout, cin, 3, 3))
            conv.bias.copy_(bias.repeat_interleave(4))
        super().__init__(conv, nn.PixelShuffle(2))


def _rewrite_transposed_convs(body: nn.Module, *, float_levels: int = 0) -> int:
    """Make each decoder ConvTranspose a PhaseConvTranspose (BatchNorm after it folded in first), except in the
    `float_levels` outermost U-Net levels; returns how many were rewritten."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    blocks = [m for m in body.modules() if isinstance(m, UNetBlock)]  # pre-order: outermost level first
    count = 0
    for block in blocks[float_levels:]:
        seq = block.model
        for i, layer in enumerate(list(seq)):
            if not isinstance(layer, nn.ConvTranspose2d):
                continue
            if i + 1 < len(seq) and isinstance(seq[i + 1], nn.BatchNorm2d):
                layer = fuse_conv_bn_eval(layer, seq[i + 1], transpose=True)
                seq[i + 1] = nn.Identity()
            seq[i] = PhaseConvTranspose(layer)
            count += 1
    return count


class _LOnly(nn.Module):
    """The deployed function: L_n -> ab_n, one input, nothing random."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, L: torch.Tensor) -> torch.Tensor:  # the argument name L becomes the ONNX input name
        return self.body(L)


def deployable(generator: UNetGenerator, *, quantizable: bool = False, float_levels: int = 0) -> nn.Module:
    """A copy of `generator` (eval mode) as an L -> ab module, with the rewrites described in the module docstring.

    quantizable: rewrite the decoder's ConvTransposes as Conv + DepthToSpace, except in the
    `float_levels` outermost levels (which int8 leaves in float).
    """
    g = copy.deepcopy(generator).eval()
    spec = g.spec
    body = g.model  # the outermost UNetBlock: what forward() calls after adding z
    if spec.noise_channels:
        first = body.model[0]
        if not isinstance(first, nn.Conv2d) or first.in_channels != spec.in_channels + spec.noise_channels:
            raise ExportError(f"unexpected first layer {first} for a generator with {spec.noise_channels} noise channels")
        sliced = nn.Conv2d(spec.in_channels, first.out_channels, first.kernel_size, first.stride, first.padding,
                           bias=first.bias is not None)
        with torch.no_grad():
            sliced.weight.copy_(first.weight[:, : spec.in_channels])
            if first.bias is not None:
                sliced.bias.copy_(first.bias)
        body.model[0] = sliced
    if quantizable:
        n = _rewrite_transposed_convs(body, float_levels=float_levels)
        log.debug("rewrote %d ConvTranspose layers as Conv + DepthToSpace", n)
    return _LOnly(body).eval()


def float_level_plan(depth: int, requested: int | None = None) -> list[int]:
    """How many outermost decoder levels int8 keeps in float, in the order they are tried."""
    if requested is not None:
        if not 0 <= requested <= depth:
            raise ExportError(f"int8 float levels must be in 0..{depth} for this generator, got {requested}")
        return [requested]
    return sorted({k for k in (0, 1, 2, 3) if k <= depth} | {depth})
