"""jik876/hifi-gan's own code (``hifi-gan`` 0.0.2), for the parity tests and ``bench step --baseline
reference`` (``distgan.bench.reference_step`` runs its step); imported only there, bench-only.

HiFi-GAN's ``meldataset.mel_spectrogram`` no longer runs on current librosa (positional
arguments) and PyTorch (``stft`` without ``return_complex``); ``HiFiGANLogMel`` does its arithmetic
(reflect padding, magnitude with 1e-9 under the root, Slaney mel matrix, log of the clamped value)
with the filterbank cached once, which the original's cache meant to do.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from distgan.config import AudioConfig, Config, OptimizerConfig
from distgan.families.hifigan.release import GENERATOR_KEYS, HIFIGAN_D


class HiFiGANLogMel:
    """``(wave [B, T], fmax) -> log-mel`` as HiFi-GAN's data loader computes it."""

    def __init__(self, audio: AudioConfig) -> None:
        self.audio = audio
        self._basis: dict[tuple[float | None, torch.device], torch.Tensor] = {}  # the original caches these
        self._window: dict[torch.device, torch.Tensor] = {}

    def __call__(self, wave: torch.Tensor, fmax: float | None) -> torch.Tensor:
        a = self.audio
        bool(wave.min() < -1.0), bool(wave.max() > 1.0)  # the original's range warnings (two host syncs)
        if (fmax, wave.device) not in self._basis:
            from librosa.filters import mel

            basis = mel(sr=a.sample_rate, n_fft=a.n_fft, n_mels=a.n_mels, fmin=a.fmin, fmax=fmax)
            self._basis[(fmax, wave.device)] = torch.from_numpy(basis).float().to(wave.device)
        pad = (a.n_fft - a.hop_length) // 2
        padded = F.pad(wave.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        if wave.device not in self._window:
            self._window[wave.device] = torch.hann_window(a.win_length, device=wave.device)
        spec = torch.stft(padded, a.n_fft, hop_length=a.hop_length, win_length=a.win_length,
                          window=self._window[wave.device], center=False, return_complex=True)
        magnitude = torch.sqrt(torch.view_as_real(spec).pow(2).sum(-1) + 1e-9)
        return torch.log(torch.clamp(self._basis[(fmax, wave.device)] @ magnitude, min=1e-5))


class HiFiGANReference:
    """What differs between the original trainers: their checks, models, losses, mel, clipping."""

    cudnn_benchmark = True  # HiFi-GAN's train.py sets torch.backends.cudnn.benchmark
    # The reference step's class (None: ``distgan.bench.reference_step.ReferenceStep``, the
    # train.py that HiFi-GAN and BigVGAN share, with its fixed lsgan losses and weights).
    step_class: Any = None
    steps_schedulers = False  # per epoch in HiFi-GAN's train.py, so outside a timed step

    def check(self, cfg: Config, need: Any) -> None:
        """What only this code fixes; ``need(field, ours, theirs)`` raises on a difference."""
        d = cfg.model.discriminator
        for key, value in HIFIGAN_D.items():
            need(f"model.discriminator.{key}", getattr(d, key), value)
        need("audio.n_mels", cfg.audio.n_mels, 80)
        need("loss.mel", cfg.loss.mel, "single")
        need("loss.mel_weight", cfg.loss.mel_weight, 45.0)
        for model in ("generator", "discriminator"):
            need(f"optim.{model}.grad_clip", getattr(cfg.optim, model).grad_clip, None)

    def hparams(self, cfg: Config) -> dict[str, Any]:
        """``cfg`` under the original code's hyperparameter names."""
        g = cfg.model.generator
        return {key: getattr(g, key) for key in GENERATOR_KEYS} | {"num_mels": cfg.audio.n_mels,
                                                                    "sampling_rate": cfg.audio.sample_rate}

    def build(self, cfg: Config) -> tuple[nn.Module, dict[str, nn.Module]]:
        from hifi_gan.env import AttrDict
        from hifi_gan.models import Generator, MultiPeriodDiscriminator, MultiScaleDiscriminator

        return Generator(AttrDict(self.hparams(cfg))), {"mpd": MultiPeriodDiscriminator(),
                                                        "msd": MultiScaleDiscriminator()}

    def losses(self) -> tuple[Any, Any, Any]:
        from hifi_gan import models

        return models.discriminator_loss, models.generator_loss, models.feature_loss

    def log_mel(self, cfg: Config) -> Any:
        return HiFiGANLogMel(cfg.audio)

    def grad_clip(self, optim: OptimizerConfig) -> float | None:
        return None  # HiFi-GAN never clips


REFERENCE = HiFiGANReference()
