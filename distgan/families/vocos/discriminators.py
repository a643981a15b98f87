"""Vocos's discriminators: MPD (HiFi-GAN's, as vocos keeps it) and MRD (descript-audio-codec's).

Both take ``[B, 1, T]`` and return ``(logits, feature maps)`` per sub-discriminator, the
structure distgan's step and losses take; ``VocosDiscriminator`` lists MPD's first.

Where they differ from ``distgan.models``' shared sets (so they are Vocos's own, not reused):

- MPD (``distgan.models.discriminators.PeriodDiscriminator`` has the same layers, weights and
  logits): vocos' feature maps leave out the first convolution's output (HiFi-GAN's include it),
  which changes the feature-matching loss.
- MRD: vocos' is descript-audio-codec's multi-band complex-STFT discriminator
  (``distgan.models.multiband``, shared with the DAC family), set as vocos has it: centred STFT,
  peak normalisation inside, no first-layer feature maps. (``distgan.models.mrd``, UnivNet's MRD
  as BigVGAN uses it, is a different module: one magnitude spectrogram through one stack.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from distgan.models.layers import LRELU_SLOPE
from distgan.models.multiband import MultiBandSTFTDiscriminator


class VocosPeriodDiscriminator(nn.Module):
    """``[B, 1, T]`` -> (logits ``[B, N]``, 5 feature maps): every ``period``-th sample, 2-D
    convolutions with ``(5, 1)`` kernels (vocos: 32, 128, 512, 1024, 1024 channels), stride 3 but the last."""

    def __init__(self, period: int, channels: list[int], kernel_size: int = 5, stride: int = 3) -> None:
        super().__init__()
        self.period = period
        widths = [1, *channels]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(c_in, c_out, (kernel_size, 1), (stride if i < len(channels) - 1 else 1, 1),
                                  padding=(kernel_size // 2, 0)))
            for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)))
        self.conv_post = weight_norm(nn.Conv2d(channels[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, wave: torch.Tensor):
        batch, channels, length = wave.shape
        if length % self.period:
            wave = F.pad(wave, (0, self.period - length % self.period), mode="reflect")
        x = wave.view(batch, channels, -1, self.period)
        feats = []
        for i, conv in enumerate(self.convs):
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            if i > 0:
                feats.append(x)
        x = self.conv_post(x)
        feats.append(x)
        return torch.flatten(x, 1, -1), feats


class VocosResolutionDiscriminator(MultiBandSTFTDiscriminator):
    """``[B, 1, T]`` -> (logits ``[B, frames * bins']``, 21 feature maps) at one STFT window: the
    shared multi-band discriminator as Vocos sets it (centred STFT, its own peak normalisation,
    no first-layer feature maps; vocos keeps the logits ``[B, 1, frames, bins']``, the losses take
    their mean either way)."""

    def __init__(self, window_length: int, channels: int = 32, hop_factor: float = 0.25) -> None:
        super().__init__(window_length, channels, hop_factor, match_stride=False, normalize=True,
                         first_features=False)


class VocosMultiPeriod(nn.Module):
    def __init__(self, periods: list[int], channels: list[int]) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(VocosPeriodDiscriminator(p, channels) for p in periods)


class VocosMultiResolution(nn.Module):
    def __init__(self, fft_sizes: list[int]) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(VocosResolutionDiscriminator(w) for w in fft_sizes)


class VocosDiscriminator(nn.Module):
    """MPD then MRD: ``[B, 1, T]`` -> ``([logits] * (periods + resolutions), [[feature maps]] * ...)``;
    ``n_period`` says where MRD's start (the objective weighs them apart)."""

    def __init__(self, periods: list[int], fft_sizes: list[int],
                 mpd_channels: list[int] = (32, 128, 512, 1024, 1024)) -> None:
        super().__init__()
        self.mpd = VocosMultiPeriod(periods, list(mpd_channels))
        self.mrd = VocosMultiResolution(fft_sizes)
        self.n_period = len(periods)

    def forward(self, wave: torch.Tensor):
        logits, feats = [], []
        for d in [*self.mpd.discriminators, *self.mrd.discriminators]:
            logit, feat = d(wave)
            logits.append(logit)
            feats.append(feat)
        return logits, feats
