"""The WaveGAN family's shapes: noise in, a clip of the configured length out; one logit per clip."""

from __future__ import annotations

import pytest
import torch

from distgan.config import load_config
from distgan.families import build_models
from distgan.families.wavegan.config import WaveGANConfig
from distgan.families.wavegan.models import (
    WaveGANDiscriminator,
    WaveGANGenerator,
    latent_noise,
    transposed_padding,
)
from distgan.inference.load import _mel_vocoder as mel_vocoder_only
from tests.train.helpers import REPO_ROOT

SMALL = WaveGANConfig(latent_dim=8, initial_length=4, generator_channels=[16, 8, 4], upsample_strides=[4, 2],
                      kernel_size=25, discriminator_channels=[4, 8, 8])


@pytest.mark.parametrize(("kernel", "stride"), [(25, 4), (25, 2), (24, 4), (5, 1), (2, 4)])
def test_each_stage_lengthens_exactly_by_its_stride(kernel: int, stride: int) -> None:
    padding, output_padding = transposed_padding(kernel, stride)
    conv = torch.nn.ConvTranspose1d(1, 1, kernel, stride, padding, output_padding)
    assert conv(torch.zeros(1, 1, 13)).shape[-1] == 13 * stride


def test_generator_turns_noise_into_clips_of_the_configured_length() -> None:
    generator = WaveGANGenerator(SMALL)
    clips = generator(torch.randn(3, 8))
    assert clips.shape == (3, 1, 4 * 4 * 2) == (3, 1, SMALL.output_samples())
    assert clips.abs().max() < 1  # tanh
    batchnorms = [m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(batchnorms) == 1 + len(SMALL.upsample_strides)
    with pytest.raises(ValueError, match=r"expected noise \[B, 8\]"):
        generator(torch.randn(3, 9))


def test_discriminator_gives_one_logit_per_clip_and_its_feature_maps() -> None:
    discriminator = WaveGANDiscriminator(SMALL)
    (logits,), (features,) = discriminator(torch.randn(5, 1, 32))
    assert logits.shape == (5, 1)
    assert [f.shape[1:] for f in features] == [(4, 8), (8, 2), (8, 1)]  # stride 4, then the length floors at 1
    assert discriminator.separate_real_fake_calls is True
    with pytest.raises(ValueError, match=r"expected waveforms \[B, 1, 32\]"):
        discriminator(torch.randn(5, 1, 31))


def test_full_recipe_is_one_second_at_16_khz_and_the_family_builds_from_config() -> None:
    cfg = load_config(REPO_ROOT / "configs" / "wavegan.yaml")
    generator, discriminator = build_models(cfg)
    assert isinstance(generator, WaveGANGenerator) and isinstance(discriminator, WaveGANDiscriminator)
    assert generator.output_samples == cfg.data.segment_samples == 16384
    with pytest.raises(ValueError, match="distgan sample"):
        mel_vocoder_only(cfg.model.generator, REPO_ROOT)


def test_noise_is_a_pure_function_of_its_seed() -> None:
    assert torch.equal(latent_noise(4, 8, (1234, 7, 0, 0)), latent_noise(4, 8, (1234, 7, 0, 0)))
    assert not torch.equal(latent_noise(4, 8, (1234, 7, 0, 0)), latent_noise(4, 8, (1234, 7, 1, 0)))
