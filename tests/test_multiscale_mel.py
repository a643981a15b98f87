"""BigVGAN v2's multi-scale mel loss on its own (its parity with NVIDIA's code is in
tests/models/test_bigvgan_parity.py): zero on equal inputs, a known value for a known level change,
input shapes, precision, and gradient."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from distgan.losses.multiscale_mel import MultiScaleMelLoss
from tests.models.helpers import single_thread


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    with single_thread():
        yield


def noise(*shape: int, seed: int = 0) -> torch.Tensor:
    return 0.3 * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_seven_scales_and_zero_on_equal_inputs() -> None:
    loss = MultiScaleMelLoss(24000)
    real = noise(2, 1, 2048)
    assert len(loss.scales) == 7
    assert [s.filterbank.shape[0] for s in loss.scales] == [5, 10, 20, 40, 80, 160, 320]
    assert loss(real, real).item() == 0.0
    assert loss(noise(2, 1, 2048, seed=1), real).item() > 0.1


def test_a_ten_times_louder_fake_costs_one_per_scale() -> None:
    """log10 mel: a 10x amplitude is +1 in every band (none near the clamp floor, none empty)."""
    loss = MultiScaleMelLoss(22050, n_mels=[10, 20], window_lengths=[256, 512])
    real = noise(1, 2048)
    assert loss(10 * real, real).item() == pytest.approx(2.0, rel=1e-5)
    power = MultiScaleMelLoss(22050, n_mels=[10, 20], window_lengths=[256, 512], power=2.0)
    assert power(10 * real, real).item() == pytest.approx(4.0, rel=1e-5)


def test_accepts_both_shapes_is_symmetric_and_computes_in_float32() -> None:
    loss = MultiScaleMelLoss(16000)
    real, fake = noise(2, 1, 2048), noise(2, 1, 2048, seed=1)
    expected = loss(fake, real)
    assert expected.dtype == torch.float32
    torch.testing.assert_close(loss(fake.squeeze(1), real.squeeze(1)), expected)
    torch.testing.assert_close(loss(real, fake), expected)
    assert loss(fake.bfloat16(), real.bfloat16()).dtype == torch.float32
    with pytest.raises(ValueError, match="one entry per scale"):
        MultiScaleMelLoss(16000, n_mels=[5, 10])


def test_the_gradient_reaches_the_fake_waveform() -> None:
    loss = MultiScaleMelLoss(16000)
    fake = noise(1, 2048, seed=1).requires_grad_(True)
    loss(fake, noise(1, 2048)).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0 and torch.isfinite(fake.grad).all()
