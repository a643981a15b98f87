"""configs/bigvgan_*.yaml carry NVIDIA's official recipes: model layouts from the presets the parity
tests hold to the reference modules, training and audio values from the same JSON files
(``distgan.families.bigvgan.presets``), and the multi-scale mel loss as the bigvgan package defines it."""

from __future__ import annotations

import inspect

import pytest

from distgan.config import Config, load_config
from distgan.families.bigvgan.presets import (
    CQT_PRESET,
    GENERATOR_PRESETS,
    MPD_PRESET,
    MRD_PRESET,
    TRAINING_PRESETS,
)
from tests.train.helpers import REPO_ROOT

CONFIGS = REPO_ROOT / "configs"
RECIPES = {
    "bigvgan_v2_22khz_80band_256x": "v2_22khz_80band_256x",
    "bigvgan_v2_24khz_100band_256x": "v2_24khz_100band_256x",
    "bigvgan_v2_44khz_128band_512x": "v2_44khz_128band_512x",
    "bigvgan_base_22khz_80band": "v1_base_22khz_80band",
}


def recipe(name: str) -> Config:
    return load_config(CONFIGS / f"{name}.yaml")


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_generator_is_the_official_one(name: str) -> None:
    cfg, preset = recipe(name), dict(GENERATOR_PRESETS[RECIPES[name]])
    g = cfg.model.generator
    assert g.family == "bigvgan" and not g.activation_checkpointing
    assert cfg.audio.n_mels == preset.pop("n_mels")
    assert {key: getattr(g, key) for key in preset} == preset


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_discriminators_are_the_official_ones(name: str) -> None:
    d = recipe(name).model.discriminator
    assert (d.periods, d.mpd_channels, d.mpd_use_spectral_norm) == tuple(MPD_PRESET.values())
    if name.startswith("bigvgan_v2"):
        assert d.kinds == ["mpd", "cqtd"]
        assert (d.cqtd_hop_lengths, d.cqtd_n_octaves, d.cqtd_bins_per_octaves, d.cqtd_filters, d.cqtd_max_filters,
                d.cqtd_filters_scale, d.cqtd_dilations, d.cqtd_normalize_volume) == tuple(CQT_PRESET.values())
    else:
        assert d.kinds == ["mpd", "mrd"]
        assert (d.mrd_resolutions, d.mrd_channels, d.mrd_use_spectral_norm) == tuple(MRD_PRESET.values())


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_audio_losses_and_training_are_the_official_ones(name: str) -> None:
    cfg, official = recipe(name), TRAINING_PRESETS[RECIPES[name]]
    a = cfg.audio
    assert (a.sample_rate, a.n_mels, a.n_fft, a.hop_length, a.win_length, a.fmin, a.fmax, a.fmax_loss) == tuple(
        official[key] for key in ("sampling_rate", "num_mels", "n_fft", "hop_size", "win_size", "fmin", "fmax",
                                  "fmax_for_loss"))
    loss = cfg.loss
    assert (loss.adversarial, loss.adv_weight, loss.fm_weight) == ("lsgan", 1.0, 2.0)  # bigvgan/loss.py
    assert loss.mel == ("multiscale" if official["use_multiscale_melloss"] else "single")
    assert loss.mel_weight == official["lambda_melloss"]
    for optim in (cfg.optim.generator, cfg.optim.discriminator):
        assert (optim.lr, optim.betas, optim.lr_decay, optim.lr_decay_every, optim.grad_clip) == (
            official["learning_rate"], [official["adam_b1"], official["adam_b2"]], official["lr_decay"], "step",
            official["clip_grad_norm"])
        assert (optim.eps, optim.weight_decay, optim.warmup_steps) == (1e-8, 0.01, 0)  # torch.optim.AdamW's
    assert (cfg.data.segment_samples, cfg.data.batch_size, cfg.train.seed) == (
        official["segment_size"], official["batch_size"], official["seed"])
    assert (cfg.train.precision, cfg.train.d_steps_per_g, cfg.train.mel_only_steps) == ("fp32", 1, 0)


def test_multiscale_mel_loss_is_the_bigvgan_packages() -> None:
    loss_module = pytest.importorskip("bigvgan.loss")
    defaults = inspect.signature(loss_module.MultiScaleMelSpectrogramLoss.__init__).parameters
    for name in RECIPES:
        ms = recipe(name).loss.multiscale_mel
        assert (ms.n_mels, ms.window_lengths, ms.clamp_eps, ms.power) == (
            defaults["n_mels"].default, defaults["window_lengths"].default, defaults["clamp_eps"].default,
            defaults["pow"].default)
        assert defaults["mel_fmin"].default == [0] * 7 and defaults["mel_fmax"].default == [None] * 7


def test_the_tiny_recipe_is_a_small_v2() -> None:
    cfg = recipe("bigvgan_tiny")
    assert (cfg.model.generator.family, cfg.model.discriminator.kinds, cfg.loss.mel) == \
        ("bigvgan", ["mpd", "cqtd"], "multiscale")
    assert not cfg.model.generator.use_tanh_at_final and not cfg.model.generator.use_bias_at_final
