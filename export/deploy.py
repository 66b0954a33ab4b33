"""The deployed form of a generator: exactly-equivalent rewrites made before export, and its ONNX graph.

`deployable` makes the L -> ab module; `to_onnx` exports it (torch's dynamo exporter, dynamic
batch and size) as a tidy graph without metadata (export.describe adds that, once, at the end).

The rewrites, each one verified by the exporter's parity check:

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

import contextlib
import copy
import logging
import warnings
from collections.abc import Iterator

import onnx
import torch
from torch import nn

from labcolor.export import ExportError
from labcolor.trainer.networks import UNetBlock, UNetGenerator

log = logging.getLogger(__name__)

# The graph's tensor names; the runtime reads them from the metadata rather than assuming them.
INPUT_NAME = "L"
OUTPUT_NAME = "ab"


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


def to_onnx(module: nn.Module, size_multiple: int, opset: int) -> onnx.ModelProto:
    """The deployable `module` as a tidy ONNX graph: torch.onnx (dynamo) export with dynamic N and
    H, W = size_multiple * k; input L (N, 1, H, W), output ab (N, 2, H, W), no metadata yet."""
    from torch.export import Dim

    batch = Dim("batch", min=1)
    h = Dim("h", min=1)
    w = Dim("w", min=1)
    # Batch 2 and a 2x2 bottleneck: sizes of 1 would be specialised into the graph.
    dummy = torch.zeros(2, 1, 2 * size_multiple, 2 * size_multiple)
    quiet = _quiet_loggers("torch.onnx", "torch.export", "torch._export", "onnx_ir", "onnxscript")
    with warnings.catch_warnings(), quiet:
        warnings.simplefilter("ignore")  # the exporter warns about things that do not apply to a pure CNN
        try:
            program = torch.onnx.export(
                module,
                (dummy,),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                dynamo=True,
                external_data=False,
                optimize=True,  # constant folding, BatchNorm folded into Conv/ConvTranspose
                verbose=False,
                dynamic_shapes={"L": {0: batch, 2: size_multiple * h, 3: size_multiple * w}},
            )
        except Exception as exc:  # the exporter raises many types; all mean the same to a caller
            first_line = (str(exc).strip().splitlines() or [""])[0]
            raise ExportError(f"torch.onnx.export failed: {exc.__class__.__name__}: {first_line}") from exc
    model = program.model_proto
    _tidy(model)
    return model


@contextlib.contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    """The exporter's libraries log every optimisation pass at INFO, and warn about things that do not
    concern a pure CNN (torchvision ops not registered, opset down-conversion through the C API)."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.ERROR))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _tidy(model: onnx.ModelProto) -> None:
    """Readable I/O dims (N, H, W shared by input and output) and no exporter debug annotations.

    The exporter names dims after its symbols ("16*h") and annotates every node with torch
    provenance (source lines of the developer's checkout); neither belongs in a release file.
    """
    for value, dims in ((model.graph.input[0], ("N", None, "H", "W")), (model.graph.output[0], ("N", None, "H", "W"))):
        for dim, name in zip(value.type.tensor_type.shape.dim, dims):
            if name is not None:
                dim.ClearField("dim_value")
                dim.dim_param = name
    for node in model.graph.node:
        del node.metadata_props[:]
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        del value.metadata_props[:]
    for init in model.graph.initializer:
        del init.metadata_props[:]
    del model.graph.metadata_props[:]
    del model.metadata_props[:]
