"""MPD and MSD: output and feature shapes, size, norms, and per-sample independence."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from distgan.config import DiscriminatorConfig
from distgan.models.discriminators import (
    Discriminators,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    PeriodDiscriminator,
)

SMALL = DiscriminatorConfig(periods=[2, 3], mpd_channels=[4, 8, 8], msd_scales=3,
                            msd_channels=[8, 16, 16, 32, 32, 32, 16])


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def msd_lengths(length: int, scales: int) -> list[int]:
    """Input length of each MSD scale: AvgPool1d(4, 2, padding=2) gives floor(L / 2) + 1."""
    lengths = [length]
    for _ in range(scales - 1):
        lengths.append(lengths[-1] // 2 + 1)
    return lengths


@pytest.fixture(scope="module")
def hifigan_discriminators() -> Discriminators:
    torch.manual_seed(0)
    return Discriminators(DiscriminatorConfig()).eval()


def test_hifigan_size(hifigan_discriminators: Discriminators) -> None:
    # HiFi-GAN's MPD + MSD: 41.1M + 29.6M = 70.7M, counting weight norm's magnitudes.
    assert n_params(hifigan_discriminators.mpd) == pytest.approx(41.11e6, rel=0.002)
    assert n_params(hifigan_discriminators.msd) == pytest.approx(29.62e6, rel=0.002)
    assert n_params(hifigan_discriminators) == pytest.approx(70.7e6, rel=0.002)


@pytest.mark.parametrize("length", [8192, 2047])
def test_hifigan_output_shapes(hifigan_discriminators: Discriminators, length: int) -> None:
    cfg = DiscriminatorConfig()
    with torch.no_grad():
        logits, features = hifigan_discriminators(torch.randn(1, 1, length))
    assert len(logits) == len(features) == len(cfg.periods) + cfg.msd_scales
    for period, period_logits, maps in zip(cfg.periods, logits, features, strict=False):
        rows = math.ceil(length / period)
        heights = []
        for _ in range(len(cfg.mpd_channels) - 1):  # stride-3 layers
            rows = math.ceil(rows / 3)
            heights.append(rows)
        heights.append(rows)  # stride-1 layer
        assert [tuple(m.shape) for m in maps] == (
            [(1, c, h, period) for c, h in zip(cfg.mpd_channels, heights, strict=True)]
            + [(1, 1, rows, period)]
        )
        assert period_logits.shape == (1, rows * period)
    for scale_length, scale_logits, maps in zip(msd_lengths(length, cfg.msd_scales), logits[5:], features[5:],
                                                strict=True):
        strides = [1, 2, 2, 4, 4, 1, 1]
        sizes = []
        size = scale_length
        for stride in strides:
            size = math.ceil(size / stride)
            sizes.append(size)
        assert [tuple(m.shape) for m in maps] == (
            [(1, c, n) for c, n in zip(cfg.msd_channels, sizes, strict=True)] + [(1, 1, size)]
        )
        assert scale_logits.shape == (1, math.ceil(scale_length / 64))
    if length == 8192:
        assert [x.shape[1] for x in logits] == [102, 102, 105, 105, 110, 128, 65, 33]


def test_norms_are_parametrizations() -> None:
    d = Discriminators(SMALL)
    kinds = {}
    for name, module in d.named_modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            assert parametrize.is_parametrized(module, "weight"), name
            assert not module._forward_pre_hooks, name  # not the deprecated hook-based norms
            kinds[name] = type(module.parametrizations.weight[0]).__name__
    spectral = {name for name, kind in kinds.items() if "Spectral" in kind}
    assert spectral == {name for name in kinds if name.startswith("msd.discriminators.0.")}
    assert all("WeightNorm" in kind for name, kind in kinds.items() if name not in spectral)


@pytest.mark.parametrize("training", [False, True])
def test_concatenated_batch_equals_separate_calls(training: bool) -> None:
    torch.manual_seed(0)
    d = Discriminators(SMALL).train(training)
    real, fake = torch.randn(2, 1, 2000), torch.randn(3, 1, 2000)
    if training:
        # Spectral norm advances its power iteration once per training-mode call, so keep only
        # the weight-normed parts here; eval mode below covers the whole set.
        d = MultiPeriodDiscriminator(SMALL.periods, SMALL.mpd_channels).train()
    with torch.no_grad():
        joint_logits, joint_features = d(torch.cat([real, fake]))
        real_logits, real_features = d(real)
        fake_logits, fake_features = d(fake)
    for joint, r, f in zip(joint_logits, real_logits, fake_logits, strict=True):
        torch.testing.assert_close(joint, torch.cat([r, f]), rtol=1e-5, atol=1e-6)
    for joint_maps, r_maps, f_maps in zip(joint_features, real_features, fake_features, strict=True):
        for joint, r, f in zip(joint_maps, r_maps, f_maps, strict=True):
            torch.testing.assert_close(joint, torch.cat([r, f]), rtol=1e-5, atol=1e-6)


def test_period_discriminator_keeps_phases_apart() -> None:
    """Folding by the period makes each output column see only its own phase of the waveform."""
    torch.manual_seed(0)
    period = 3
    d = PeriodDiscriminator(period, [4, 8, 8])
    wave = torch.randn(1, 1, 300)
    perturbed = wave.clone()
    perturbed[..., 1::period] += 1.0  # phase 1 only
    with torch.no_grad():
        before = d(wave)[0].view(1, -1, period)
        after = d(perturbed)[0].view(1, -1, period)
    assert torch.equal(before[..., [0, 2]], after[..., [0, 2]])
    assert not torch.equal(before[..., 1], after[..., 1])


def test_odd_length_is_reflect_padded() -> None:
    torch.manual_seed(0)
    d = PeriodDiscriminator(5, [4, 8])
    wave = torch.randn(1, 1, 103)
    padded = torch.cat([wave, wave[..., [101, 100]]], dim=-1)  # reflect padding to 105
    with torch.no_grad():
        torch.testing.assert_close(d(wave)[0], d(padded)[0], rtol=0, atol=0)


def test_msd_pools_before_later_scales() -> None:
    torch.manual_seed(0)
    msd = MultiScaleDiscriminator(2, SMALL.msd_channels).eval()
    wave = torch.randn(1, 1, 640)
    pooled = torch.nn.functional.avg_pool1d(wave, 4, 2, padding=2)
    with torch.no_grad():
        logits, _ = msd(wave)
        torch.testing.assert_close(logits[1], msd.discriminators[1](pooled)[0])


def test_accepts_a_batch_of_flat_waveforms() -> None:
    d = Discriminators(SMALL).eval()
    wave = torch.randn(2, 1000)
    with torch.no_grad():
        flat, _ = d(wave)
        channel, _ = d(wave.unsqueeze(1))
    for a, b in zip(flat, channel, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
