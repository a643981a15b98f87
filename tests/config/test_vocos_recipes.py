"""configs/vocos_mel_24khz.yaml carries the official recipe (gemelo-ai/vocos configs/vocos.yaml, the
charactr/vocos-mel-24khz release), and configs/vocos_tiny.yaml is a valid Vocos config."""

from __future__ import annotations

import pytest

from distgan.config import ConfigError, load_config
from distgan.families import family_of
from tests.train.helpers import REPO_ROOT

CONFIGS = REPO_ROOT / "configs"
# configs/vocos.yaml of gemelo-ai/vocos, in its own key names.
OFFICIAL = {
    "sampling_rate": 24000, "num_samples": 16384, "batch_size": 16, "initial_learning_rate": 5e-4,
    "mel_loss_coeff": 45, "mrd_loss_coeff": 0.1, "num_warmup_steps": 0, "pretrain_mel_steps": 0,
    "n_fft": 1024, "hop_length": 256, "n_mels": 100, "padding": "center", "dim": 512, "intermediate_dim": 1536,
    "num_layers": 8,
    "max_steps": 2_000_000,  # Lightning counts G and D steps: 1M each
}
# vocos.experiment.VocosExp and vocos.discriminators, which the YAML leaves at their defaults.
CODE_DEFAULTS = {"betas": [0.8, 0.9], "periods": [2, 3, 5, 7, 11], "fft_sizes": [2048, 1024, 512],
                 "decay_mel_coeff": False}


def test_the_mel_recipe_is_the_official_one() -> None:
    cfg = load_config(CONFIGS / "vocos_mel_24khz.yaml")
    g, audio, o = cfg.model.generator, cfg.audio, OFFICIAL
    assert family_of(cfg).name == "vocos"
    assert (audio.sample_rate, audio.n_fft, audio.hop_length, audio.win_length, audio.n_mels) == (
        o["sampling_rate"], o["n_fft"], o["hop_length"], o["n_fft"], o["n_mels"])
    assert (audio.fmin, audio.fmax) == (0.0, None)  # torchaudio's MelSpectrogram defaults
    assert (g.dim, g.intermediate_dim, g.num_layers, g.padding, g.layer_scale_init_value) == (
        o["dim"], o["intermediate_dim"], o["num_layers"], o["padding"], None)
    assert (g.mel_loss_coeff, g.mrd_loss_coeff, g.decay_mel_coeff) == (
        o["mel_loss_coeff"], o["mrd_loss_coeff"], CODE_DEFAULTS["decay_mel_coeff"])
    assert (g.mpd_periods, g.mrd_fft_sizes) == (CODE_DEFAULTS["periods"], CODE_DEFAULTS["fft_sizes"])
    assert g.mpd_channels == [32, 128, 512, 1024, 1024]
    assert (cfg.data.batch_size, cfg.data.segment_samples) == (o["batch_size"], o["num_samples"])
    assert cfg.train.max_steps == o["max_steps"] // 2
    assert cfg.train.mel_only_steps == o["pretrain_mel_steps"]
    assert cfg.loss.adversarial == "hinge"
    for optim in (cfg.optim.generator, cfg.optim.discriminator):
        assert (optim.lr, optim.betas, optim.schedule, optim.warmup_steps) == (
            o["initial_learning_rate"], CODE_DEFAULTS["betas"], "cosine", o["num_warmup_steps"])
        assert (optim.weight_decay, optim.eps, optim.grad_clip) == (0.01, 1e-8, None)  # torch.optim.AdamW's


def test_the_tiny_recipe_is_small() -> None:
    cfg = load_config(CONFIGS / "vocos_tiny.yaml")
    assert family_of(cfg).name == "vocos"
    assert cfg.model.generator.num_layers <= 2 and cfg.data.segment_samples <= 8192


def test_vocos_refuses_another_adversarial_loss() -> None:
    with pytest.raises(ConfigError, match="loss.adversarial: hinge"):
        load_config(CONFIGS / "vocos_tiny.yaml", ["loss.adversarial=lsgan"])


def test_vocos_refuses_settings_it_does_not_read() -> None:
    with pytest.raises(ConfigError, match="loss.mel_weight"):
        load_config(CONFIGS / "vocos_tiny.yaml", ["loss.mel_weight=10.0"])
    with pytest.raises(ConfigError, match="loss.adv_weight=2.0"):
        load_config(CONFIGS / "vocos_tiny.yaml", ["loss.adv_weight=2.0"])
