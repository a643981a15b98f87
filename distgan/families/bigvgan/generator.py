"""BigVGAN generator (Lee et al. 2023; v2: NVIDIA 2024): log-mel frames in, waveform samples out.

HiFi-GAN's layout (input conv, per upsample rate a transposed conv and a mean of residual blocks,
output conv) with AMP blocks instead of MRF blocks: every activation is an anti-aliased Snake or
SnakeBeta, including the one before the output conv, and there is no activation before the
transposed convolutions. v2 ends without tanh and without a bias on the output conv: the waveform is
clamped to [-1, 1] instead, which lets the model reach full scale without tanh's saturation.

Weight norm is a parametrization, as in ``distgan.families.hifigan.generator`` (ZeRO-3 gathers parameters
before the weight is recomputed); the initialisation is PyTorch's default, which is what NVIDIA's
code effectively has (see ``distgan.families.bigvgan.amp``). Module names follow NVIDIA's except that
each upsampling convolution is ``ups[i]`` rather than ``ups[i][0]``: ``REFERENCE_RENAMES`` and
``distgan.models.reference_weights.load_reference_state_dict`` load released checkpoints.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from distgan.families.bigvgan.activations import ACTIVATIONS
from distgan.families.bigvgan.amp import AMP_BLOCKS
from distgan.families.bigvgan.filters import AntiAliasedActivation
from distgan.families.hifigan.generator import fold_weight_norm, fuse_blocks


class BigVGANGenerator(nn.Module):
    """Log-mel ``[B, n_mels, frames]`` -> waveform ``[B, 1, frames * hop]`` in [-1, 1].

    ``hop = prod(upsample_rates)``. Stage ``i`` runs at ``prod(upsample_rates[:i + 1])`` steps per
    frame with ``upsample_initial_channel / 2**(i + 1)`` channels. ``resblock`` "1" or "2" picks the
    AMP block; ``activation`` "snake" or "snakebeta"; ``snake_logscale`` stores the activations'
    parameters as logarithms. ``use_tanh_at_final=False`` clamps the output instead (v2).
    ``activation_checkpointing`` recomputes each AMP block's activations in the backward instead of
    keeping them (``distgan.families.hifigan.generator.fuse_blocks``): the anti-aliased activations hold
    2x-upsampled copies of every feature map, most of the generator's training memory.
    """

    REFERENCE_RENAMES: ClassVar[tuple[tuple[str, str | None], ...]] = (
        (r"^ups\.(\d+)\.0\.", r"ups.\1."),
        # The resampling filters are constants here (non-persistent buffers).
        (r"\.(upsample\.filter|downsample\.lowpass\.filter)$", None),
    )
    # The inverse, for export (the filters come back from ``AntiAliasedActivation.REFERENCE_BUFFERS``).
    REFERENCE_EXPORT_RENAMES: ClassVar[tuple[tuple[str, str], ...]] = ((r"^ups\.(\d+)\.", r"ups.\1.0."),)

    def __init__(
        self,
        n_mels: int,
        upsample_rates: list[int],
        upsample_kernel_sizes: list[int],
        upsample_initial_channel: int,
        resblock: str,
        resblock_kernel_sizes: list[int],
        resblock_dilation_sizes: list[list[int]],
        activation: str = "snakebeta",
        snake_logscale: bool = True,
        use_tanh_at_final: bool = True,
        use_bias_at_final: bool = True,
        activation_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        _check(upsample_rates, upsample_kernel_sizes, resblock, resblock_kernel_sizes, resblock_dilation_sizes,
               activation)
        self.hop_length = math.prod(upsample_rates)
        self.num_kernels = len(resblock_kernel_sizes)
        self.use_tanh_at_final = use_tanh_at_final
        self.activation_checkpointing = activation_checkpointing
        width = upsample_initial_channel
        self.conv_pre = weight_norm(nn.Conv1d(n_mels, width, 7, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        block = AMP_BLOCKS[resblock]
        for i, (rate, kernel) in enumerate(zip(upsample_rates, upsample_kernel_sizes, strict=True)):
            channels = width // 2 ** (i + 1)
            self.ups.append(weight_norm(
                nn.ConvTranspose1d(width // 2**i, channels, kernel, rate, padding=(kernel - rate) // 2)))
            for kernel_size, dilations in zip(resblock_kernel_sizes, resblock_dilation_sizes, strict=True):
                self.resblocks.append(block(channels, kernel_size, dilations, activation, snake_logscale))
        channels = width // 2 ** len(upsample_rates)
        self.activation_post = AntiAliasedActivation(ACTIVATIONS[activation](channels, snake_logscale))
        self.conv_post = weight_norm(nn.Conv1d(channels, 1, 7, padding=3, bias=use_bias_at_final))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(x)
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            x = fuse_blocks(blocks, x, self.activation_checkpointing)
        x = self.conv_post(self.activation_post(x))
        return torch.tanh(x) if self.use_tanh_at_final else torch.clamp(x, -1.0, 1.0)

    def remove_weight_norm(self) -> None:
        """Fold every weight-norm parametrization into a plain ``weight`` (outputs unchanged)."""
        fold_weight_norm(self)


def _check(upsample_rates: list[int], upsample_kernel_sizes: list[int], resblock: str,
           resblock_kernel_sizes: list[int], resblock_dilation_sizes: list[list[int]], activation: str) -> None:
    """Reject settings the layout cannot honour, before building anything."""
    if len(upsample_rates) != len(upsample_kernel_sizes):
        raise ValueError("upsample_kernel_sizes needs one entry per upsample rate")
    if len(resblock_kernel_sizes) != len(resblock_dilation_sizes):
        raise ValueError("resblock_dilation_sizes needs one entry per resblock kernel size")
    if resblock not in AMP_BLOCKS:
        raise ValueError(f"resblock must be one of {sorted(AMP_BLOCKS)}, got {resblock!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    for rate, kernel in zip(upsample_rates, upsample_kernel_sizes, strict=True):
        if (kernel - rate) % 2:
            raise ValueError(f"upsample kernel {kernel} and rate {rate} must differ by an even number")
