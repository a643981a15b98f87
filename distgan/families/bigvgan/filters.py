"""Anti-aliased activation: 2x upsample, nonlinearity, low-pass, 2x downsample (BigVGAN's AMP).

A periodic nonlinearity such as Snake creates harmonics far above the signal's band; applied at the
sample rate of the features they fold back (alias) into the band and show up as inharmonic
artifacts. BigVGAN (after StyleGAN3) evaluates the nonlinearity at twice the rate and low-passes
before returning to the original rate, so most of what it creates above the original Nyquist
frequency is removed instead of folded back.

Both resampling filters are the same 12-tap Kaiser-windowed sinc with cutoff a quarter of the
doubled rate (the original Nyquist frequency), designed as NVIDIA's torch implementation does (not
its fused CUDA kernel): same window, same taps, same replicate padding, so outputs match it to
float rounding. The filters are constants of the design and stay out of state dicts
(non-persistent buffers); ``distgan.models.reference_weights`` drops the reference's copies.

Shapes: ``[B, C, T] -> [B, C, T]`` for the whole block; ``[B, C, T] -> [B, C, 2T]`` and back for the
two resampling steps.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

# Taps of both resampling filters (StyleGAN3's and BigVGAN's choice for a ratio of 2).
FILTER_TAPS = 12
RATIO = 2


def kaiser_beta(attenuation_db: float) -> float:
    """Kaiser's empirical window parameter for a stop-band attenuation (Kaiser 1974)."""
    if attenuation_db > 50.0:
        return 0.1102 * (attenuation_db - 8.7)
    if attenuation_db >= 21.0:
        return 0.5842 * (attenuation_db - 21.0) ** 0.4 + 0.07886 * (attenuation_db - 21.0)
    return 0.0


def kaiser_sinc_filter(cutoff: float, half_width: float, taps: int) -> torch.Tensor:
    """Low-pass FIR ``[taps]`` with unit DC gain; ``cutoff`` and ``half_width`` in cycles per sample.

    The attenuation that Kaiser's formula reaches with ``taps`` taps and a transition band of
    ``2 * half_width`` sets the window; an even ``taps`` centres the filter between two samples.
    """
    if not 0.0 < cutoff <= 0.5:
        raise ValueError(f"cutoff must be in (0, 0.5] cycles per sample, got {cutoff}")
    half = taps // 2
    attenuation_db = 2.285 * (half - 1) * math.pi * (4 * half_width) + 7.95
    window = torch.kaiser_window(taps, periodic=False, beta=kaiser_beta(attenuation_db))
    time = torch.arange(taps) - half + (0.5 if taps % 2 == 0 else 0.0)
    response = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    # Exactly unit DC gain, or a constant input would leak a small offset through every layer.
    return response / response.sum()


def _resampling_filter() -> torch.Tensor:
    """``[1, 1, taps]``: the low-pass at the original Nyquist frequency, in units of the 2x rate."""
    return kaiser_sinc_filter(0.5 / RATIO, 0.6 / RATIO, FILTER_TAPS).view(1, 1, FILTER_TAPS)


class AntiAliasedActivation(nn.Module):
    """``act`` evaluated at twice the rate: ``[B, C, T] -> [B, C, T]``.

    Upsampling inserts zeros and filters (gain 2 to keep the level); downsampling filters and keeps
    every second sample. Both pad by replicating the edge samples, so a constant input stays
    constant up to the ends. The activation is ``self.act`` so that its parameters keep the
    reference's names (``...act.alpha``).
    """

    up_filter: torch.Tensor
    down_filter: torch.Tensor
    # Where NVIDIA's module keeps the same filters, persistently (for export to its format).
    REFERENCE_BUFFERS: ClassVar[dict[str, str]] = {"upsample.filter": "up_filter",
                                                   "downsample.lowpass.filter": "down_filter"}

    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.act = act
        self.register_buffer("up_filter", _resampling_filter(), persistent=False)
        self.register_buffer("down_filter", _resampling_filter(), persistent=False)

    def upsample(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, T] -> [B, C, 2T]``."""
        channels = x.shape[1]
        pad = FILTER_TAPS // RATIO - 1
        x = F.pad(x, (pad, pad), mode="replicate")
        x = RATIO * F.conv_transpose1d(x, self.up_filter.expand(channels, -1, -1), stride=RATIO,
                                       groups=channels)
        # Drop what the padding produced, so that the output lines up with the input.
        left = pad * RATIO + (FILTER_TAPS - RATIO) // 2
        right = pad * RATIO + (FILTER_TAPS - RATIO + 1) // 2
        return x[..., left:-right]

    def downsample(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, 2T] -> [B, C, T]``."""
        channels = x.shape[1]
        x = F.pad(x, (FILTER_TAPS // 2 - 1, FILTER_TAPS // 2), mode="replicate")
        return F.conv1d(x, self.down_filter.expand(channels, -1, -1), stride=RATIO, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))
