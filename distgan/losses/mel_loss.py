"""The generator's mel loss as ``loss.mel`` configures it: ``(fake, real)`` waveforms -> a scalar.

- ``single`` (HiFi-GAN, BigVGAN v1): L1 between the log-mels of the run's own mel front end
  (``distgan.losses.mel``, over ``[audio.fmin, audio.fmax_loss]``);
- ``multiscale`` (BigVGAN v2): ``distgan.losses.multiscale_mel.MultiScaleMelLoss`` with
  ``loss.multiscale_mel``'s scales over the same band.

Either is logged as ``g/mel`` and weighted by ``loss.mel_weight``; both run in float32.
"""

from __future__ import annotations

import torch
from torch import nn

from distgan.config import Config
from distgan.losses import gan as losses
from distgan.losses.mel import MelSpectrogram
from distgan.losses.multiscale_mel import MultiScaleMelLoss


class SingleScaleMelLoss(nn.Module):
    """``(fake, real)`` waveforms ``[B, 1, T]`` or ``[B, T]`` -> mean ``|log-mel difference|``."""

    def __init__(self, mel: MelSpectrogram) -> None:
        super().__init__()
        self.mel = mel

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return losses.mel_l1_loss(self.mel(real), self.mel(fake))


def build_mel_loss(cfg: Config, mel: MelSpectrogram | None = None) -> nn.Module:
    """The configured mel loss; ``mel``: the loss-band front end to reuse for ``single`` (else built)."""
    audio = cfg.audio
    if cfg.loss.mel == "single":
        return SingleScaleMelLoss(mel if mel is not None else MelSpectrogram.for_loss(audio))
    ms = cfg.loss.multiscale_mel
    scales = len(ms.window_lengths)
    return MultiScaleMelLoss(audio.sample_rate, ms.n_mels, ms.window_lengths, fmin=[audio.fmin] * scales,
                             fmax=[audio.fmax_loss] * scales, clamp_eps=ms.clamp_eps, power=ms.power)
