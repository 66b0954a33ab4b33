"""Generator and discriminator construction, shapes, and every D/norm/loss variant's training step."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from labcolor.trainer.config import ConfigError, TrainConfig
from labcolor.trainer.networks import UNetBlock, build_discriminator, build_generator, count_parameters
from labcolor.trainer.specs import DISCRIMINATOR_KINDS, GENERATOR_NORMS, NORMS, DiscriminatorSpec, GeneratorSpec
from labcolor.trainer.losses import GAN_MODES
from labcolor.trainer.train import TrainState, train_step


@pytest.mark.parametrize("size,depth", [(32, 5), (128, 5), (128, 7), (64, 3)])
@pytest.mark.parametrize("norm", GENERATOR_NORMS)
def test_generator_maps_l_to_ab_in_unit_range(size: int, depth: int, norm: str) -> None:
    g = build_generator(GeneratorSpec(depth=depth, base_channels=4, norm=norm), init_std=0.02).eval()
    out = g(torch.randn(2, 1, size, size))
    assert out.shape == (2, 2, size, size)
    assert out.abs().max() <= 1.0  # tanh


def test_generator_accepts_non_square_multiples_of_its_size_multiple() -> None:
    spec = GeneratorSpec(depth=4, base_channels=4)
    g = build_generator(spec).eval()
    assert spec.size_multiple == 16
    assert g(torch.randn(1, 1, 48, 80)).shape == (1, 2, 48, 80)


def test_unet_is_recursive_with_skip_connections() -> None:
    g = build_generator(GeneratorSpec(depth=5, base_channels=4))
    blocks = [m for m in g.modules() if isinstance(m, UNetBlock)]
    assert len(blocks) == 5
    # Every inner block concatenates its input with its output (the skip): channels double.
    inner = blocks[1]
    x = torch.randn(2, 4, 16, 16)
    assert inner(x).shape == (2, 8, 16, 16)


def test_width_follows_base_and_cap() -> None:
    small = count_parameters(build_generator(GeneratorSpec(depth=5, base_channels=8)))
    wide = count_parameters(build_generator(GeneratorSpec(depth=5, base_channels=16)))
    capped = count_parameters(build_generator(GeneratorSpec(depth=5, base_channels=16, max_channels=32)))
    assert wide > 3 * small
    assert capped < wide


def test_dropout_sits_next_to_the_bottleneck_like_pix2pix() -> None:
    g = build_generator(GeneratorSpec(depth=8, base_channels=4))
    assert sum(isinstance(m, nn.Dropout) for m in g.modules()) == 3
    g0 = build_generator(GeneratorSpec(depth=8, base_channels=4, dropout=0.0))
    assert not any(isinstance(m, nn.Dropout) for m in g0.modules())


def test_noise_channel_is_stochastic_in_training_and_deterministic_in_eval() -> None:
    torch.manual_seed(0)
    g = build_generator(GeneratorSpec(depth=3, base_channels=4, noise_channels=1, dropout=0.0, norm="none"))
    x = torch.randn(1, 1, 16, 16)
    g.train()
    assert not torch.equal(g(x), g(x))
    g.eval()
    assert torch.equal(g(x), g(x))
    # An explicit z is used as given.
    z = torch.randn(1, 1, 16, 16)
    assert torch.equal(g(x, z), g(x, z))
    assert not torch.equal(g(x, z), g(x))


@pytest.mark.parametrize("kind,norm", list(itertools.product(DISCRIMINATOR_KINDS, NORMS)))
@pytest.mark.parametrize("size", [32, 128])
def test_discriminator_output_shapes(kind: str, norm: str, size: int) -> None:
    d = build_discriminator(DiscriminatorSpec(kind=kind, norm=norm, base_channels=4, image_size=size), init_std=0.02)
    out = d(torch.randn(2, 3, size, size))
    if kind == "global":
        assert out.shape == (2, 1)
    else:
        assert out.dim() == 4 and out.shape[:2] == (2, 1) and out.shape[-1] > 1


def test_spectral_norm_uses_torch_parametrization() -> None:
    d = build_discriminator(DiscriminatorSpec(norm="spectral", base_channels=4, image_size=32))
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in convs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())


def test_unconditional_discriminator_sees_ab_only() -> None:
    spec = DiscriminatorSpec(conditional=False, base_channels=4, image_size=32)
    assert spec.in_channels == 2
    assert build_discriminator(spec)(torch.randn(1, 2, 32, 32)).shape[:2] == (1, 1)


def test_global_discriminator_rejects_other_sizes() -> None:
    d = build_discriminator(DiscriminatorSpec(kind="global", base_channels=4, image_size=32))
    with pytest.raises(ValueError, match="32px"):
        d(torch.randn(1, 3, 64, 64))


def test_init_std_sets_weight_statistics() -> None:
    g = build_generator(GeneratorSpec(depth=5, base_channels=16), init_std=0.02)
    w = torch.cat([m.weight.detach().flatten() for m in g.modules() if isinstance(m, nn.Conv2d)])
    assert abs(float(w.std()) - 0.02) < 0.002


@pytest.mark.parametrize("size", [32, 128])
@pytest.mark.parametrize(
    "kind,norm,loss",
    [(k, n, l) for k in DISCRIMINATOR_KINDS for n in NORMS for l in GAN_MODES],
)
def test_every_variant_runs_one_training_step(size: int, kind: str, norm: str, loss: str) -> None:
    torch.manual_seed(0)
    cfg = TrainConfig(
        data="unused", size=size, depth=5, base_channels=4, d_base_channels=4, d_kind=kind, d_norm=norm,
        gan_loss=loss, real_label=1.0 if loss == "hinge" else 0.9, batch_size=2, device="cpu",
    )
    state = TrainState.create(cfg, torch.device("cpu"))
    before = [p.detach().clone() for p in state.d.parameters()]
    losses = train_step(state, torch.rand(2, 1, size, size) * 2 - 1, torch.rand(2, 2, size, size) * 0.6 - 0.3)
    assert set(losses) == {"d_loss", "d_real", "d_fake", "g_adv", "g_l1"}
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, state.d.parameters()))  # D really stepped
    assert state.step == 1


def test_l1_only_baseline_builds_no_discriminator() -> None:
    cfg = TrainConfig(data="unused", adv_weight=0.0, base_channels=4, batch_size=2)
    state = TrainState.create(cfg, torch.device("cpu"))
    assert state.d is None and state.opt_d is None
    assert set(train_step(state, torch.zeros(2, 1, 32, 32), torch.zeros(2, 2, 32, 32))) == {"g_l1"}


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"size": 48}, "multiple of 2\\*\\*depth"),
        ({"d_norm": "layer"}, "discriminator norm"),
        ({"g_norm": "spectral"}, "generator norm"),
        ({"d_kind": "pixel"}, "discriminator must be"),
        ({"adv_weight": 0.0, "l1_weight": 0.0}, "not both 0"),
        ({"lr_decay": "linear", "decay_start": 300}, "decay-start"),
    ],
)
def test_invalid_configs_are_refused_with_the_option_named(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(data="unused", **overrides)
