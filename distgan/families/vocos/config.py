"""Vocos's ``model.generator`` section: the backbone and head, its discriminators and its loss weights.

The defaults are the official mel recipe's (gemelo-ai/vocos ``configs/vocos.yaml``, the
``charactr/vocos-mel-24khz`` release): a 512-wide, 8-layer ConvNeXt backbone with 1536 hidden
units, an ISTFT head with ``center`` padding, MPD periods 2, 3, 5, 7, 11 and MRD windows 2048,
1024, 512, mel loss coefficient 45 and MRD coefficient 0.1. ``pretrain_mel_steps`` is
``train.mel_only_steps``; the warm-up steps of the cosine schedule are ``optim.*.warmup_steps``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from distgan.config import Config, ConfigError, FamilyConfig


@dataclass
class VocosConfig(FamilyConfig):
    family: str = "vocos"
    # vocos.models.VocosBackbone: ConvNeXt blocks of width ``dim`` (``intermediate_dim`` inside);
    # layer scale starts at ``layer_scale_init_value`` (null: 1 / num_layers, as the reference).
    dim: int = 512
    intermediate_dim: int = 1536
    num_layers: int = 8
    layer_scale_init_value: float | None = None
    # vocos.heads.ISTFTHead's padding; the mel features' padding is the same.
    padding: Literal["center", "same"] = "center"
    # The discriminators (vocos.discriminators): MPD's periods, MRD's FFT windows.
    mpd_periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    # MPD's convolution widths: vocos' fixed ones by default (smaller only for the tiny recipe).
    mpd_channels: list[int] = field(default_factory=lambda: [32, 128, 512, 1024, 1024])
    mrd_fft_sizes: list[int] = field(default_factory=lambda: [2048, 1024, 512])
    # VocosExp's loss weights: G = adv_mpd + c * adv_mrd + fm_mpd + c * fm_mrd + mel_coeff * mel.
    mel_loss_coeff: float = 45.0
    mrd_loss_coeff: float = 0.1
    # Decay the mel coefficient with the cosine of the learning-rate schedule (VocosExp).
    decay_mel_coeff: bool = False


def check(cfg: Config) -> None:
    g, audio = cfg.model.generator, cfg.audio
    if min(g.dim, g.intermediate_dim, g.num_layers) < 1:
        raise ConfigError(f"model.generator: dim, intermediate_dim and num_layers must be positive, got "
                          f"{g.dim}, {g.intermediate_dim} and {g.num_layers}")
    if audio.win_length != audio.n_fft:
        raise ConfigError(f"audio.win_length must equal audio.n_fft for vocos (its STFT windows are n_fft long), "
                          f"got {audio.win_length} and {audio.n_fft}")
    if g.padding == "same" and (audio.n_fft - audio.hop_length) % 2:
        raise ConfigError("model.generator.padding: same needs audio.n_fft - audio.hop_length even")
    if any(not values or min(values) < 1 for values in (g.mpd_periods, g.mpd_channels, g.mrd_fft_sizes)):
        raise ConfigError("model.generator: mpd_periods, mpd_channels and mrd_fft_sizes must be non-empty lists of "
                          "positive ints")
    if cfg.loss.adv_weight != 1.0:
        raise ConfigError(f"loss.adv_weight={cfg.loss.adv_weight}: vocos weighs its adversarial terms 1 (MPD) and "
                          "model.generator.mrd_loss_coeff (MRD)")
    if cfg.loss.adversarial != "hinge" or cfg.loss.generator_adversarial != "same":
        raise ConfigError(f"vocos trains with hinge losses: set loss.adversarial: hinge (got "
                          f"{cfg.loss.adversarial!r}) and leave loss.generator_adversarial: same")
