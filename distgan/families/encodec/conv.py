"""EnCodec's streamable building blocks (``encodec.modules.conv`` and ``lstm``, written anew): a
1-D convolution and transposed convolution that pad themselves, causally or not, and an LSTM over
the time axis.

Why they pad themselves: SEANet's strided convolutions must give ``ceil(T / stride)`` frames for
any ``T`` and the decoder must undo them exactly, so the padding is a function of the layer, not a
``padding=`` argument:

- a convolution with kernel ``k``, stride ``s`` and dilation ``d`` needs ``(k - 1) d - (s - 1)``
  samples of padding in all; causal puts them all on the left (no output sees the future),
  non-causal splits them, the extra one on the left for an odd total. On the right it adds what
  makes the last window whole (``extra_padding``), which the decoder's caller crops off at the end;
- a transposed convolution (kernel ``k``, stride ``s``) trims ``k - s`` samples: causal all on the
  right (``trim_right_ratio`` 1, EnCodec's) or a share of them, non-causal split as above.

Reflect padding of an input shorter than the padding reflects a zero-extended copy (then drops
the zeros), so a one-frame input still pads.

Module paths are EnCodec's (``conv.conv`` for a convolution, ``convtr.convtr`` for a transposed
one, ``lstm`` for the LSTM): an EnCodec state dict maps key for key, weight norm's leaves apart
(parametrizations here, ``weight_g``/``weight_v`` there: ``distgan.models.reference_weights``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

NORMS = ("none", "weight_norm", "time_group_norm")


def extra_padding(length: int, kernel: int, stride: int, padding_total: int) -> int:
    """Samples to add on the right so that the last window of a ``length``-sample input is whole."""
    steps = math.ceil((length - kernel + padding_total) / stride)
    return steps * stride + kernel - padding_total - length


def pad1d(x: torch.Tensor, left: int, right: int, mode: str) -> torch.Tensor:
    """``F.pad`` on the last axis; ``reflect`` also for an input no longer than the padding."""
    if mode != "reflect":
        return F.pad(x, (left, right), mode=mode)
    short = max(0, max(left, right) - x.shape[-1] + 1)
    padded = F.pad(F.pad(x, (0, short)), (left, right), mode="reflect")
    return padded[..., : padded.shape[-1] - short]


def split(total: int, causal: bool, right_share: float = 0.5) -> tuple[int, int]:
    """``total`` as (left, right): causal puts ``ceil(total x right_share)`` on the right (for a
    convolution's padding the share is 0); non-causal ``total // 2`` on the right."""
    right = math.ceil(total * right_share) if causal else total // 2
    return total - right, right


class NormedConv(nn.Module):
    """A convolution (``conv`` or ``convtr``) and the normalisation after it (``norm``: identity but
    for ``time_group_norm``, EnCodec 48 kHz's GroupNorm of one group)."""

    def __init__(self, conv: nn.Module, norm: str, attribute: str) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm {norm!r}: one of {NORMS}")
        self.attribute = attribute
        setattr(self, attribute, weight_norm(conv) if norm == "weight_norm" else conv)
        self.norm = nn.GroupNorm(1, conv.out_channels) if norm == "time_group_norm" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(getattr(self, self.attribute)(x))


class StreamableConv1d(nn.Module):
    """``[B, C_in, T]`` -> ``[B, C_out, ceil(T / stride)]``, padded as the module docstring says."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1,
                 causal: bool = False, norm: str = "none", pad_mode: str = "reflect") -> None:
        super().__init__()
        self.conv = NormedConv(nn.Conv1d(in_channels, out_channels, kernel_size, stride, dilation=dilation),
                               norm, "conv")
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.causal, self.pad_mode = causal, pad_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = (self.kernel_size - 1) * self.dilation - (self.stride - 1)
        extra = extra_padding(x.shape[-1], self.kernel_size, self.stride, total)
        left, right = split(total, self.causal, right_share=0.0)
        return self.conv(pad1d(x, left, right + extra, self.pad_mode))


class StreamableConvTranspose1d(nn.Module):
    """``[B, C_in, T]`` -> ``[B, C_out, T x stride]``, its ``kernel - stride`` overhang trimmed."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 causal: bool = False, norm: str = "none", trim_right_ratio: float = 1.0) -> None:
        super().__init__()
        if not 0.0 <= trim_right_ratio <= 1.0 or (not causal and trim_right_ratio != 1.0):
            raise ValueError(f"trim_right_ratio={trim_right_ratio}: in [0, 1], and 1 unless causal")
        self.convtr = NormedConv(nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride), norm, "convtr")
        self.kernel_size, self.stride = kernel_size, stride
        self.causal, self.trim_right_ratio = causal, trim_right_ratio

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convtr(x)
        left, right = split(self.kernel_size - self.stride, self.causal, self.trim_right_ratio)
        return y[..., left: y.shape[-1] - right]


class StreamableLSTM(nn.Module):
    """``[B, C, T]`` -> ``[B, C, T]``: ``layers`` LSTM layers along time, plus the input (``skip``)."""

    def __init__(self, dimension: int, layers: int = 2, skip: bool = True) -> None:
        super().__init__()
        self.skip = skip
        self.lstm = nn.LSTM(dimension, dimension, layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.permute(2, 0, 1)  # [T, B, C]: nn.LSTM's default layout
        y, _ = self.lstm(frames)
        if self.skip:
            y = y + frames
        return y.permute(1, 2, 0)
