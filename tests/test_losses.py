"""GAN objectives and label smoothing, checked against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from labcolor.trainer.losses import GANLoss, l1_loss


def test_vanilla_at_zero_logits_is_log2() -> None:
    loss = GANLoss("vanilla")
    zeros = torch.zeros(4, 1)
    assert float(loss.discriminator(zeros, zeros)) == pytest.approx(math.log(2), rel=1e-6)
    assert float(loss.generator(zeros)) == pytest.approx(math.log(2), rel=1e-6)


def test_one_sided_label_smoothing_moves_only_the_real_target() -> None:
    smooth, plain = GANLoss("vanilla", real_label=0.9), GANLoss("vanilla")
    real, fake = torch.full((8, 1, 3, 3), 4.0), torch.full((8, 1, 3, 3), -4.0)
    # BCE(x, t) = softplus(x) - t*x. Real half with t=0.9 at x=4: softplus(4) - 3.6.
    expected = 0.5 * ((math.log1p(math.exp(4.0)) - 3.6) + math.log1p(math.exp(-4.0)))
    assert float(smooth.discriminator(real, fake)) == pytest.approx(expected, rel=1e-5)
    assert float(smooth.discriminator(real, fake)) > float(plain.discriminator(real, fake))
    # G's target is never smoothed.
    assert float(smooth.generator(fake)) == float(plain.generator(fake))


def test_lsgan_is_mean_squared_error_to_targets() -> None:
    loss = GANLoss("lsgan", real_label=0.9)
    real, fake = torch.full((2, 1), 0.5), torch.full((2, 1), 0.25)
    assert float(loss.discriminator(real, fake)) == pytest.approx(0.5 * ((0.5 - 0.9) ** 2 + 0.25**2))
    assert float(loss.generator(fake)) == pytest.approx((0.25 - 1.0) ** 2)


def test_hinge() -> None:
    loss = GANLoss("hinge")
    real = torch.tensor([[2.0], [0.5]])
    fake = torch.tensor([[-2.0], [0.0]])
    # relu(1 - real) = [0, 0.5] -> 0.25; relu(1 + fake) = [0, 1] -> 0.5
    assert float(loss.discriminator(real, fake)) == pytest.approx(0.5 * (0.25 + 0.5))
    assert float(loss.generator(fake)) == pytest.approx(1.0)


def test_hinge_refuses_label_smoothing_and_bad_modes() -> None:
    with pytest.raises(ValueError, match="hinge"):
        GANLoss("hinge", real_label=0.9)
    with pytest.raises(ValueError, match="vanilla, lsgan, hinge"):
        GANLoss("wasserstein")
    with pytest.raises(ValueError, match="real label"):
        GANLoss("vanilla", real_label=0.3)


def test_l1() -> None:
    assert float(l1_loss(torch.ones(1, 2, 2, 2), torch.zeros(1, 2, 2, 2))) == 1.0
