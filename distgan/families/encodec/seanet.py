"""SEANet, EnCodec's encoder and decoder (Défossez et al. 2022; ``encodec.modules.seanet``).

Encoder: audio ``[B, channels, T]`` -> latents ``[B, dimension, ceil(T / hop)]``, ``hop`` the
product of ``ratios``: a convolution to ``n_filters``, then per ratio (in reverse: the decoder's
order is the config's) ``n_residual_layers`` residual blocks and a strided convolution (kernel
``2 x ratio``) that doubles the width, an LSTM of ``lstm`` layers (0: none) and a convolution to
``dimension``. Decoder: the mirror (convolution, LSTM, per ratio a transposed convolution that
halves the width and residual blocks, a convolution to ``channels``), ``[B, dimension, frames]``
-> ``[B, channels, frames x hop]`` (longer than the input when ``T`` is not whole frames: the codec
crops). ELU before every convolution but the first; no final activation (EnCodec's models have none).

A residual block is ``shortcut(x) + conv_1(elu(conv_k(elu(x))))`` with ``dim // compress`` channels
inside, dilation ``dilation_base ** j`` for the ``j``-th block of a stage, and a 1x1 convolution as
the shortcut unless ``true_skip``.

Modules sit at EnCodec's indices of ``model`` (``encoder.model.0.conv.conv``...), so an EnCodec
state dict loads key for key (``conv.py``'s docstring; weight norm's leaves apart).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from distgan.families.encodec.conv import StreamableConv1d, StreamableConvTranspose1d, StreamableLSTM


@dataclass(frozen=True)
class SEANetSettings:
    """What encoder and decoder share (``encodec.modules.SEANetEncoder``'s arguments and defaults;
    ``elu_alpha`` is its ``activation_params``: the activation is ELU)."""

    channels: int = 1
    dimension: int = 128
    n_filters: int = 32
    n_residual_layers: int = 1
    ratios: tuple[int, ...] = (8, 5, 4, 2)
    elu_alpha: float = 1.0
    norm: str = "weight_norm"
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_base: int = 2
    causal: bool = False
    pad_mode: str = "reflect"
    true_skip: bool = False
    compress: int = 2
    lstm: int = 2
    trim_right_ratio: float = 1.0  # the decoder's transposed convolutions (causal only)

    @property
    def hop_length(self) -> int:
        return math.prod(self.ratios)

    def conv(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
             dilation: int = 1) -> StreamableConv1d:
        return StreamableConv1d(in_channels, out_channels, kernel_size, stride, dilation, causal=self.causal,
                                norm=self.norm, pad_mode=self.pad_mode)

    def activation(self) -> nn.Module:
        return nn.ELU(alpha=self.elu_alpha)


class ResidualBlock(nn.Module):
    """``[B, dim, T]`` -> ``[B, dim, T]`` (the module docstring's residual block)."""

    def __init__(self, s: SEANetSettings, dim: int, dilation: int) -> None:
        super().__init__()
        hidden = dim // s.compress
        self.block = nn.Sequential(s.activation(), s.conv(dim, hidden, s.residual_kernel_size, dilation=dilation),
                                   s.activation(), s.conv(hidden, dim, 1))
        self.shortcut: nn.Module = nn.Identity() if s.true_skip else s.conv(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


def residual_stage(s: SEANetSettings, dim: int) -> list[nn.Module]:
    return [ResidualBlock(s, dim, s.dilation_base ** j) for j in range(s.n_residual_layers)]


class SEANetEncoder(nn.Module):
    def __init__(self, s: SEANetSettings) -> None:
        super().__init__()
        self.settings, self.hop_length = s, s.hop_length
        width = s.n_filters
        layers: list[nn.Module] = [s.conv(s.channels, width, s.kernel_size)]
        for ratio in reversed(s.ratios):
            layers += residual_stage(s, width)
            layers += [s.activation(), s.conv(width, 2 * width, 2 * ratio, stride=ratio)]
            width *= 2
        if s.lstm:
            layers.append(StreamableLSTM(width, s.lstm))
        layers += [s.activation(), s.conv(width, s.dimension, s.last_kernel_size)]
        self.model = nn.Sequential(*layers)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.model(audio)


class SEANetDecoder(nn.Module):
    def __init__(self, s: SEANetSettings, final_activation: Callable[[], nn.Module] | None = None) -> None:
        super().__init__()
        self.settings, self.hop_length = s, s.hop_length
        width = s.n_filters * 2 ** len(s.ratios)
        layers: list[nn.Module] = [s.conv(s.dimension, width, s.kernel_size)]
        if s.lstm:
            layers.append(StreamableLSTM(width, s.lstm))
        for ratio in s.ratios:
            up = StreamableConvTranspose1d(width, width // 2, 2 * ratio, ratio, causal=s.causal, norm=s.norm,
                                           trim_right_ratio=s.trim_right_ratio)
            layers += [s.activation(), up, *residual_stage(s, width // 2)]
            width //= 2
        layers += [s.activation(), s.conv(s.n_filters, s.channels, s.last_kernel_size)]
        if final_activation is not None:
            layers.append(final_activation())
        self.model = nn.Sequential(*layers)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.model(latents)
