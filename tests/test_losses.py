"""GAN losses on hand-made logits and feature maps with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from distgan.losses import (
    discriminator_adversarial_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    mel_l1_loss,
)


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_lsgan_is_zero_at_its_targets() -> None:
    real = [torch.ones(2, 5), torch.ones(2, 3)]
    fake = [torch.zeros(2, 5), torch.zeros(2, 3)]
    d_real, d_fake = discriminator_adversarial_loss(real, fake, "lsgan")
    assert d_real.item() == 0.0 and d_fake.item() == 0.0
    assert generator_adversarial_loss(real, "lsgan").item() == 0.0


def test_lsgan_sums_per_discriminator_means() -> None:
    # Two sub-discriminators of different sizes weigh the same: mean each, then add.
    real = [torch.tensor([[0.0, 1.0]]), torch.tensor([[3.0, 1.0, 1.0, 1.0]])]
    fake = [torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 1.0, 1.0, 1.0]])]
    d_real, d_fake = discriminator_adversarial_loss(real, fake, "lsgan")
    assert d_real.item() == pytest.approx(1 / 2 + 4 / 4)
    assert d_fake.item() == pytest.approx(4 / 2 + 4 / 4)
    assert generator_adversarial_loss(fake, "lsgan").item() == pytest.approx(2 / 2 + 0.0)


def test_hinge() -> None:
    real = [torch.tensor([[2.0, 0.5, -1.0]])]
    fake = [torch.tensor([[-2.0, -0.5, 1.0]])]
    d_real, d_fake = discriminator_adversarial_loss(real, fake, "hinge")
    assert d_real.item() == pytest.approx((0.0 + 0.5 + 2.0) / 3)  # relu(1 - r)
    assert d_fake.item() == pytest.approx((0.0 + 0.5 + 2.0) / 3)  # relu(1 + f)
    assert generator_adversarial_loss(fake, "hinge").item() == pytest.approx(-(-2.0 - 0.5 + 1.0) / 3)


def test_bce_is_log_sigmoid_cross_entropy() -> None:
    values = [-3.0, -0.2, 0.0, 1.5, 40.0]
    logits = [torch.tensor([values]), torch.tensor([[0.7]])]
    d_real, d_fake = discriminator_adversarial_loss(logits, logits, "bce")
    expected_real = -sum(log_sigmoid(v) for v in values) / 5 - log_sigmoid(0.7)
    expected_fake = -sum(log_sigmoid(-v) for v in values) / 5 - log_sigmoid(-0.7)  # log(1 - sigmoid)
    assert d_real.item() == pytest.approx(expected_real, rel=1e-6)
    assert d_fake.item() == pytest.approx(expected_fake, rel=1e-6)
    # Non-saturating generator loss: BCE against "real", the same as D's real term.
    assert generator_adversarial_loss(logits, "bce").item() == pytest.approx(expected_real, rel=1e-6)
    # Stable where a naive log(sigmoid) would underflow.
    far = [torch.tensor([[-200.0]])]
    assert generator_adversarial_loss(far, "bce").item() == pytest.approx(200.0)


def test_feature_matching() -> None:
    real = [[torch.zeros(2, 3), torch.ones(4)], [torch.full((1, 2, 2), 2.0)]]
    fake = [[torch.tensor([[1.0, -1.0, 4.0], [0.0, 0.0, 0.0]]), torch.zeros(4)],
            [torch.full((1, 2, 2), 1.5)]]
    expected = 6 / 6 + 1.0 + 0.5  # one mean |r - f| per map, summed, no weight of 2 here
    assert feature_matching_loss(real, fake).item() == pytest.approx(expected)


def test_feature_matching_gradient_skips_real_features() -> None:
    real = torch.randn(2, 8, requires_grad=True)
    fake = torch.randn(2, 8, requires_grad=True)
    feature_matching_loss([[real * 1.0]], [[fake * 1.0]]).backward()
    assert real.grad is None
    assert fake.grad is not None
    torch.testing.assert_close(fake.grad, torch.sign(fake - real).detach() / 16)


def test_mel_l1() -> None:
    real = torch.zeros(2, 80, 10)
    fake = torch.zeros(2, 80, 10)
    fake[0, 0, :4] = 8.0
    assert mel_l1_loss(real, fake).item() == pytest.approx(32 / 1600)


@pytest.mark.parametrize("kind", ["lsgan", "hinge", "bce"])
def test_losses_are_float32_scalars_for_bf16_inputs(kind: str) -> None:
    torch.manual_seed(0)
    logits = [torch.randn(2, 50), torch.randn(2, 7)]
    features = [[torch.randn(2, 4, 30)], [torch.randn(2, 30), torch.randn(2, 3)]]
    low = [x.bfloat16() for x in logits]
    outputs = [
        *discriminator_adversarial_loss(low, low, kind),
        generator_adversarial_loss(low, kind),
        feature_matching_loss([[f.bfloat16() for f in fs] for fs in features], features),
        mel_l1_loss(logits[0].bfloat16(), logits[0]),
    ]
    for loss in outputs:
        assert loss.dtype == torch.float32 and loss.dim() == 0
    # Computed in float32 from the bf16 values: equal to the float32 loss on the rounded inputs.
    rounded = [x.float() for x in low]
    torch.testing.assert_close(generator_adversarial_loss(low, kind), generator_adversarial_loss(rounded, kind))


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="wasserstein"):
        generator_adversarial_loss([torch.zeros(1, 1)], "wasserstein")
    with pytest.raises(ValueError, match="wasserstein"):
        discriminator_adversarial_loss([torch.zeros(1, 1)], [torch.zeros(1, 1)], "wasserstein")


def test_generator_mse_compares_d_probability_with_the_real_label() -> None:
    # sigmoid(0) = 1/2 and sigmoid(log 3) = 3/4: (1 - p)^2 averaged per sub-discriminator, then summed.
    fake = [torch.tensor([[0.0], [math.log(3.0)]])]
    assert generator_adversarial_loss(fake, "mse").item() == pytest.approx((0.25 + 0.0625) / 2)
    assert generator_adversarial_loss([torch.tensor([[40.0]])], "mse").item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="unknown generator adversarial loss 'mae'"):
        generator_adversarial_loss(fake, "mae")
    with pytest.raises(ValueError, match="unknown adversarial loss 'mse'"):
        discriminator_adversarial_loss(fake, fake, "mse")
