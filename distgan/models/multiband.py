"""descript-audio-codec's multi-band complex-STFT discriminator (its ``MRD``), which Vocos took over.

``[B, 1, T]`` -> (logits ``[B, frames * bins']``, feature maps) at one STFT window ``w`` (hop
``w / 4``): the complex STFT as two channels (real, imaginary) ``[B, 2, frames, bins]``, split into
frequency bands (fractions of the bins, ``BANDS``), each band through its own stack of five
weight-normed 2-D convolutions with leaky ReLUs (``channels`` wide, stride 2 along frequency in
three of them), the bands concatenated along frequency and one output convolution.

It is not UnivNet's MRD (``distgan.models.mrd``, BigVGAN's): that one takes one magnitude
spectrogram through one stack. The two codes that use this one differ in three details, which are
options here rather than two copies:

- ``match_stride``: DAC's STFT (audiotools' ``match_stride=True``) reflect-pads ``(w - hop) / 2``
  samples each side plus the right padding to a multiple of the hop, then drops two frames at
  each end, so that ``frames * hop = T`` rounded up; Vocos's is torchaudio's centred STFT
  (``T / hop + 1`` frames).
- ``normalize``: Vocos's removes the DC offset and peak-normalises each clip to 0.8 inside this
  module; DAC's discriminator does the same once for all its sub-discriminators (MPD included),
  so its MRDs take the normalised clip.
- ``first_features``: DAC's feature maps include each band's first convolution; Vocos's leave it
  out (which changes the feature-matching loss, not the logits).

State dict: Vocos's keeps torchaudio's window under ``spec_fn.window``; DAC's keeps no window, and
neither does this module in ``match_stride`` mode (a non-persistent buffer).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from distgan.models.layers import LRELU_SLOPE, Output

BANDS = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))  # fractions of the bins


def peak_normalize(wave: torch.Tensor) -> torch.Tensor:
    """DC offset removed, peak at 0.8 (over the last dimension), as DAC's and Vocos's discriminators see audio."""
    wave = wave - wave.mean(dim=-1, keepdim=True)
    return 0.8 * wave / (wave.abs().max(dim=-1, keepdim=True)[0] + 1e-9)


def band_stack(channels: int) -> nn.ModuleList:
    shapes = [(2, (3, 9), (1, 1), (1, 4))] + [(channels, (3, 9), (1, 2), (1, 4))] * 3 \
        + [(channels, (3, 3), (1, 1), (1, 1))]
    return nn.ModuleList(weight_norm(nn.Conv2d(c_in, channels, kernel, stride, padding=pad))
                         for c_in, kernel, stride, pad in shapes)


class MultiBandSTFTDiscriminator(nn.Module):
    def __init__(self, window_length: int, channels: int = 32, hop_factor: float = 0.25,
                 bands: tuple[tuple[float, float], ...] = BANDS, *, match_stride: bool = False,
                 normalize: bool = False, first_features: bool = True) -> None:
        super().__init__()
        self.window_length, self.hop_length = window_length, int(window_length * hop_factor)
        self.match_stride, self.normalize, self.first_features = match_stride, normalize, first_features
        if match_stride:
            if self.hop_length != window_length // 4:
                raise ValueError(f"match_stride needs a hop of window_length / 4, got {self.hop_length}")
            # audiotools takes scipy's float64 window cast to float32, which float32 arithmetic misses by ~1 ulp.
            self.register_buffer("window", torch.hann_window(window_length, dtype=torch.float64).float(),
                                 persistent=False)
        else:
            self.spec_fn = torchaudio.transforms.Spectrogram(n_fft=window_length, hop_length=self.hop_length,
                                                             win_length=window_length, power=None)
        bins = window_length // 2 + 1
        self.bands = [(int(low * bins), int(high * bins)) for low, high in bands]
        self.band_convs = nn.ModuleList(band_stack(channels) for _ in self.bands)
        self.conv_post = weight_norm(nn.Conv2d(channels, 1, (3, 3), (1, 1), padding=(1, 1)))

    def stft(self, wave: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` -> complex ``[B, bins, frames]``."""
        if not self.match_stride:
            return self.spec_fn(wave)
        length, hop = wave.shape[-1], self.hop_length
        right = -(-length // hop) * hop - length
        pad = (self.window_length - hop) // 2
        wave = F.pad(wave.unsqueeze(1), (pad, pad + right), mode="reflect").squeeze(1)
        spec = torch.stft(wave, n_fft=self.window_length, hop_length=hop, window=self.window,
                          center=True, return_complex=True)
        return spec[..., 2:-2]

    def spectrogram(self, wave: torch.Tensor) -> list[torch.Tensor]:
        """``[B, T]`` -> per band ``[B, 2, frames, band bins]``."""
        if self.normalize:
            wave = peak_normalize(wave)
        spec = torch.view_as_real(self.stft(wave)).permute(0, 3, 2, 1)  # [B, bins, frames, 2] -> [B, 2, frames, bins]
        return [spec[..., low:high] for low, high in self.bands]

    def forward(self, wave: torch.Tensor) -> Output:
        feats, outs = [], []
        for band, stack in zip(self.spectrogram(wave.squeeze(1)), self.band_convs, strict=True):
            for i, conv in enumerate(stack):
                band = F.leaky_relu(conv(band), LRELU_SLOPE)
                if i > 0 or self.first_features:
                    feats.append(band)
            outs.append(band)
        x = self.conv_post(torch.cat(outs, dim=-1))
        feats.append(x)
        return torch.flatten(x, 1, -1), feats
