"""Vocos's discriminators: MPD (HiFi-GAN's, as vocos keeps it) and MRD (descript-audio-codec's).

Both take ``[B, 1, T]`` and return ``(logits, feature maps)`` per sub-discriminator, the
structure distgan's step and losses take; ``VocosDiscriminator`` lists MPD's first.

Where they differ from ``distgan.models``' shared sets (so they are Vocos's own, not reused):

- MPD (``distgan.models.discriminators.PeriodDiscriminator`` has the same layers, weights and
  logits): vocos' feature maps leave out the first convolution's output (HiFi-GAN's include it),
  which changes the feature-matching loss.
- MRD (``distgan.models.mrd``, UnivNet's as BigVGAN uses it, is a different module): vocos' works on
  the complex STFT (real and imaginary parts as two channels, window ``w``, hop ``w / 4``) of the
  clip with its DC offset removed and peak-normalised to 0.8, split into five frequency bands with
  a convolution stack each, concatenated along frequency before one output convolution. UnivNet's
  takes one magnitude spectrogram through one stack.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

LRELU_SLOPE = 0.1
MRD_BANDS = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))  # fractions of the bins


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


class VocosResolutionDiscriminator(nn.Module):
    """``[B, 1, T]`` -> (logits ``[B, frames * bins']``, 21 feature maps) at one STFT window (vocos
    keeps the logits ``[B, 1, frames, bins']``; the losses take their mean either way)."""

    def __init__(self, window_length: int, channels: int = 32, hop_factor: float = 0.25) -> None:
        super().__init__()
        self.spec_fn = torchaudio.transforms.Spectrogram(n_fft=window_length, hop_length=int(window_length * hop_factor),
                                                         win_length=window_length, power=None)
        bins = window_length // 2 + 1
        self.bands = [(int(low * bins), int(high * bins)) for low, high in MRD_BANDS]

        def stack() -> nn.ModuleList:
            shapes = [(2, (3, 9), (1, 1), (1, 4))] + [(channels, (3, 9), (1, 2), (1, 4))] * 3 \
                + [(channels, (3, 3), (1, 1), (1, 1))]
            return nn.ModuleList(weight_norm(nn.Conv2d(c_in, channels, kernel, stride, padding=pad))
                                 for c_in, kernel, stride, pad in shapes)

        self.band_convs = nn.ModuleList(stack() for _ in self.bands)
        self.conv_post = weight_norm(nn.Conv2d(channels, 1, (3, 3), (1, 1), padding=(1, 1)))

    def spectrogram(self, wave: torch.Tensor) -> list[torch.Tensor]:
        """``[B, T]`` -> per band ``[B, 2, frames, band bins]``."""
        wave = wave - wave.mean(dim=-1, keepdim=True)
        wave = 0.8 * wave / (wave.abs().max(dim=-1, keepdim=True)[0] + 1e-9)
        spec = torch.view_as_real(self.spec_fn(wave)).permute(0, 3, 2, 1)  # [B, bins, frames, 2] -> [B, 2, frames, bins]
        return [spec[..., low:high] for low, high in self.bands]

    def forward(self, wave: torch.Tensor):
        feats, outs = [], []
        for band, stack in zip(self.spectrogram(wave.squeeze(1)), self.band_convs, strict=True):
            for i, conv in enumerate(stack):
                band = F.leaky_relu(conv(band), LRELU_SLOPE)
                if i > 0:
                    feats.append(band)
            outs.append(band)
        x = self.conv_post(torch.cat(outs, dim=-1))
        feats.append(x)
        return torch.flatten(x, 1, -1), feats


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
