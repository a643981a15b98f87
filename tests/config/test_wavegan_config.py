"""The wavegan family's settings: its recipes load, and a setting that would silently do nothing
for a family, or shapes that do not fit together, are refused naming the fields."""

from __future__ import annotations

import pytest

from distgan.config import ConfigError, load_config
from tests.train.helpers import REPO_ROOT, TINY

WAVEGAN_TINY = REPO_ROOT / "configs" / "wavegan_tiny.yaml"


@pytest.mark.parametrize("recipe", ["wavegan.yaml", "wavegan_tiny.yaml"])
def test_recipes_are_bce_for_d_mse_for_g_clipped_and_one_clip_long(recipe: str) -> None:
    cfg = load_config(REPO_ROOT / "configs" / recipe)
    assert cfg.model.generator.family == "wavegan" and cfg.audio.sample_rate == 16000
    assert cfg.data.segment_samples == cfg.model.generator.output_samples()
    assert (cfg.loss.adversarial, cfg.loss.generator_adversarial, cfg.dist.batchnorm) == ("bce", "mse", "sync")
    assert cfg.optim.generator.grad_clip and cfg.optim.discriminator.grad_clip


def test_segment_must_be_the_generator_s_length() -> None:
    with pytest.raises(ConfigError, match=r"data.segment_samples=8192 must equal .* output length 4096"):
        load_config(WAVEGAN_TINY, ["data.segment_samples=8192"])


@pytest.mark.parametrize("override", ["loss.fm_weight=1.0", "loss.mel=multiscale", "train.mel_only_steps=10",
                                      "model.generator.resblock=2", "model.discriminator.kinds=[mpd]",
                                      "log.val_metrics=[pesq]"])
def test_vocoder_settings_are_refused_for_wavegan(override: str) -> None:
    with pytest.raises(ConfigError, match=rf"{override.split('=')[0]}: only mel-to-wave vocoders read these"):
        load_config(WAVEGAN_TINY, [override])


@pytest.mark.parametrize("override", ["model.generator.latent_dim=64", "dist.batchnorm=local",
                                      "log.val_generated_clips=8"])
def test_wavegan_settings_are_refused_for_vocoders(override: str) -> None:
    with pytest.raises(ConfigError, match=rf"{override.split('=')[0]} only applies to model.generator.family: wavegan"):
        load_config(TINY, [override])


def test_mse_generator_loss_needs_a_bce_discriminator() -> None:
    with pytest.raises(ConfigError, match="loss.generator_adversarial=mse .* not lsgan"):
        load_config(WAVEGAN_TINY, ["loss.adversarial=lsgan"])
    assert load_config(TINY, ["loss.adversarial=bce", "loss.generator_adversarial=mse"]).loss.generator_adversarial == "mse"


def test_inconsistent_wavegan_shapes_name_the_fields() -> None:
    with pytest.raises(ConfigError, match="generator_channels needs one entry more than upsample_strides"):
        load_config(WAVEGAN_TINY, ["model.generator.upsample_strides=[4,4,4]"])
    with pytest.raises(ConfigError, match="model.generator.latent_dim must be at least 1, got 0"):
        load_config(WAVEGAN_TINY, ["model.generator.latent_dim=0"])
