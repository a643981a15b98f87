"""AMP blocks (anti-aliased multi-periodicity): BigVGAN's residual blocks.

HiFi-GAN's MRF residual blocks with each leaky ReLU replaced by an anti-aliased Snake/SnakeBeta
(``filters.AntiAliasedActivation``): the periodic activation gives the bias towards periodic
signals, the 2x oversampling keeps its harmonics from aliasing. Type "1" runs, per dilation, a
dilated then an undilated convolution (two activations); type "2" only the dilated one.

Module names follow NVIDIA's code (``convs1``, ``convs2``, ``activations``) so that released
checkpoints map onto these blocks by renaming weight norm's keys alone. In type "1" the
activations interleave: ``activations[2i]`` precedes ``convs1[i]``, ``activations[2i + 1]``
precedes ``convs2[i]``.

Convolutions carry weight norm as parametrizations (see ``distgan.families.hifigan.generator``) and keep
PyTorch's default initialisation, which is what NVIDIA's code ends up with: its ``init_weights``
writes N(0, 0.01) into the weight that weight norm recomputes from ``g`` and ``v`` at the next
forward, so the draw has no effect.

Shapes: ``[B, C, T] -> [B, C, T]``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from distgan.families.bigvgan.activations import ACTIVATIONS
from distgan.families.bigvgan.filters import AntiAliasedActivation
from distgan.families.hifigan.generator import same_padding


def _conv(channels: int, kernel_size: int, dilation: int) -> nn.Module:
    """A length-preserving, weight-normed convolution."""
    return weight_norm(nn.Conv1d(channels, channels, kernel_size, dilation=dilation,
                                 padding=same_padding(kernel_size, dilation)))


def _activations(count: int, channels: int, activation: str, logscale: bool) -> nn.ModuleList:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return nn.ModuleList(AntiAliasedActivation(ACTIVATIONS[activation](channels, logscale))
                         for _ in range(count))


class AMPBlock1(nn.Module):
    """Per dilation: act, dilated conv, act, undilated conv, plus the residual. ``[B, C, T] -> [B, C, T]``."""

    def __init__(self, channels: int, kernel_size: int, dilations: list[int], activation: str,
                 snake_logscale: bool) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(_conv(channels, kernel_size, d) for d in dilations)
        self.convs2 = nn.ModuleList(_conv(channels, kernel_size, 1) for _ in dilations)
        self.activations = _activations(2 * len(dilations), channels, activation, snake_logscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        before_dilated, before_undilated = self.activations[::2], self.activations[1::2]
        for dilated, undilated, act1, act2 in zip(self.convs1, self.convs2, before_dilated, before_undilated,
                                                  strict=True):
            x = x + undilated(act2(dilated(act1(x))))
        return x


class AMPBlock2(nn.Module):
    """Per dilation: act, dilated conv, plus the residual. ``[B, C, T] -> [B, C, T]``."""

    def __init__(self, channels: int, kernel_size: int, dilations: list[int], activation: str,
                 snake_logscale: bool) -> None:
        super().__init__()
        self.convs = nn.ModuleList(_conv(channels, kernel_size, d) for d in dilations)
        self.activations = _activations(len(dilations), channels, activation, snake_logscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, act in zip(self.convs, self.activations, strict=True):
            x = x + conv(act(x))
        return x


AMP_BLOCKS: dict[str, type[AMPBlock1] | type[AMPBlock2]] = {"1": AMPBlock1, "2": AMPBlock2}
