"""Snake and SnakeBeta: periodic activations with a learned frequency per channel (Ziyin et al. 2020).

``snake(x) = x + sin^2(alpha * x) / alpha``: monotone on average like a ReLU, but with a periodic
component, which gives a waveform generator an inductive bias towards periodic signals (voiced
speech, music). SnakeBeta (BigVGAN) frees the amplitude of that component from its frequency:
``x + sin^2(alpha * x) / beta``.

With ``logscale`` (every official BigVGAN recipe) the parameters hold ``log(alpha)`` and
``log(beta)``, initialised to 0, i.e. alpha = beta = 1 as in the linear parametrisation; the log
keeps them positive and lets the optimiser move them by ratios rather than by differences.
``EPS`` keeps the division finite if a linear-scale parameter reaches 0.

Shapes: ``[B, C, T] -> [B, C, T]``; the parameters are ``[C]``.
"""

from __future__ import annotations

import torch
from torch import nn

# Added to the divisor, as in BigVGAN's code.
EPS = 1e-9


def _initial(channels: int, logscale: bool) -> nn.Parameter:
    """alpha = 1 at initialisation, in whichever scale the parameter is stored."""
    return nn.Parameter(torch.zeros(channels) if logscale else torch.ones(channels))


class Snake(nn.Module):
    """``x + sin^2(alpha x) / alpha`` per channel: ``[B, C, T] -> [B, C, T]``."""

    def __init__(self, channels: int, logscale: bool = True) -> None:
        super().__init__()
        self.logscale = logscale
        self.alpha = _initial(channels, logscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha[None, :, None]
        if self.logscale:
            alpha = alpha.exp()
        return x + (1.0 / (alpha + EPS)) * torch.sin(x * alpha).pow(2)


class SnakeBeta(nn.Module):
    """``x + sin^2(alpha x) / beta`` per channel: ``[B, C, T] -> [B, C, T]``."""

    def __init__(self, channels: int, logscale: bool = True) -> None:
        super().__init__()
        self.logscale = logscale
        self.alpha = _initial(channels, logscale)
        self.beta = _initial(channels, logscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha, beta = self.alpha[None, :, None], self.beta[None, :, None]
        if self.logscale:
            alpha, beta = alpha.exp(), beta.exp()
        return x + (1.0 / (beta + EPS)) * torch.sin(x * alpha).pow(2)


ACTIVATIONS: dict[str, type[Snake] | type[SnakeBeta]] = {"snake": Snake, "snakebeta": SnakeBeta}
