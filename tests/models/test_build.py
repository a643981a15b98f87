"""Models built from a config: the family and the discriminator sets chosen, HiFi-GAN checkpoints
unchanged, BigVGAN's receptive field, and activation checkpointing that changes memory, not numbers."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch

from distgan.config import AudioConfig, DiscriminatorConfig, load_config
from distgan.families import build_generator
from distgan.families.bigvgan.config import BigVGANConfig
from distgan.families.bigvgan.generator import BigVGANGenerator
from distgan.families.hifigan.config import HiFiGANConfig
from distgan.families.hifigan.generator import HiFiGANGenerator, input_frame_span, receptive_field
from distgan.models.build import build_discriminators
from tests.conftest import REPO_ROOT
from tests.models.helpers import single_thread

BIGVGAN_TINY = BigVGANConfig(upsample_rates=[4, 2], upsample_kernel_sizes=[8, 4],
                             upsample_initial_channel=8, resblock="1", resblock_kernel_sizes=[3, 5],
                             resblock_dilation_sizes=[[1, 3], [1, 2]])
SMALL_D = DiscriminatorConfig(periods=[2, 3], mpd_channels=[4, 8], msd_scales=2, msd_channels=[8, 16, 16, 16, 16, 16, 8],
                              mrd_resolutions=[[256, 64, 256]], mrd_channels=4, cqtd_hop_lengths=[256],
                              cqtd_n_octaves=[5], cqtd_bins_per_octaves=[12], cqtd_filters=4, cqtd_max_filters=8,
                              cqtd_dilations=[1])


def as_hifigan(cfg: BigVGANConfig) -> HiFiGANConfig:
    """The same layout as a HiFi-GAN generator (BigVGAN's own fields dropped)."""
    return HiFiGANConfig(**{f: v for f, v in cfg.__dict__.items() if f in HiFiGANConfig.__dataclass_fields__
                            and f != "family"})


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    with single_thread():
        yield


def test_family_picks_the_generator() -> None:
    assert type(build_generator(HiFiGANConfig(upsample_initial_channel=32), AudioConfig(n_mels=8))) is HiFiGANGenerator
    generator = build_generator(BIGVGAN_TINY, AudioConfig(n_mels=8))
    assert type(generator) is BigVGANGenerator and generator.hop_length == 8


def test_kinds_pick_the_sets_in_order() -> None:
    cfg = DiscriminatorConfig(**{**SMALL_D.__dict__, "kinds": ["cqtd", "mpd", "mrd"]})
    d = build_discriminators(cfg, sample_rate=22050)
    assert [name for name, _ in d.named_children()] == ["cqtd", "mpd", "mrd"]
    with torch.no_grad():
        logits, features = d(torch.randn(2, 4096))
    assert len(logits) == len(features) == 1 + 2 + 1
    assert logits[0].shape[0] == 2 and features[0][0].dim() == 4  # CQT-D first: [B, C, frames, bins]
    with pytest.raises(ValueError, match="sample rate"):
        build_discriminators(cfg, sample_rate=None)  # type: ignore[arg-type]


def test_hifigan_checkpoints_keep_their_keys() -> None:
    """Checkpoints written before ``kinds`` existed: MPD then MSD, under ``mpd.`` and ``msd.``."""
    d = build_discriminators(SMALL_D, sample_rate=22050)
    keys = list(d.state_dict())
    assert keys[0].startswith("mpd.") and keys[-1].startswith("msd.")
    assert {key.split(".")[0] for key in keys} == {"mpd", "msd"}


def test_the_tiny_bigvgan_recipe_builds() -> None:
    cfg = load_config(REPO_ROOT / "configs" / "bigvgan_tiny.yaml")
    d = build_discriminators(cfg.model.discriminator, cfg.audio.sample_rate)
    assert [name for name, _ in d.named_children()] == ["mpd", "cqtd"]
    assert type(build_generator(cfg.model.generator, cfg.audio)) is BigVGANGenerator


@pytest.mark.parametrize("resblock", ["1", "2"])
def test_bigvgan_receptive_field_is_exactly_the_gradient_support(resblock: str) -> None:
    cfg = BigVGANConfig(**{**BIGVGAN_TINY.__dict__, "resblock": resblock})
    hop = math.prod(cfg.upsample_rates)
    torch.manual_seed(0)
    generator = build_generator(cfg, AudioConfig(n_mels=4)).double()
    mel = torch.randn(1, 4, 48, dtype=torch.float64)
    for sample in range(24 * hop, 25 * hop + 1, 3):
        mel_grad = mel.clone().requires_grad_(True)
        generator(mel_grad)[0, 0, sample].backward()
        frames = mel_grad.grad.abs().sum(dim=(0, 1)).nonzero().flatten()
        assert (int(frames.min()), int(frames.max())) == input_frame_span(cfg, sample)
    assert receptive_field(cfg)[0] > receptive_field(as_hifigan(cfg))[0]


@pytest.mark.parametrize("family", ["hifigan", "bigvgan"])
def test_activation_checkpointing_changes_no_number(family: str) -> None:
    cfg = BIGVGAN_TINY if family == "bigvgan" else as_hifigan(BIGVGAN_TINY)
    results = []
    for checkpointed in (False, True):
        torch.manual_seed(0)
        generator = build_generator(type(cfg)(**{**cfg.__dict__, "activation_checkpointing": checkpointed}),
                                    AudioConfig(n_mels=4))
        mel = torch.randn(2, 4, 16)
        wave = generator(mel)
        wave.square().mean().backward()
        results.append((wave.detach(), [p.grad for p in generator.parameters()]))
    (wave_a, grads_a), (wave_b, grads_b) = results
    torch.testing.assert_close(wave_b, wave_a, rtol=0, atol=0)
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-9)
