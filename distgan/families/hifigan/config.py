"""HiFi-GAN's ``model.generator`` section and its checks (torch-free: read with the config)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from distgan.config.schema import Config, ConfigError, FamilyConfig


@dataclass
class HiFiGANConfig(FamilyConfig):
    """HiFi-GAN's generator (Kong et al. 2020); the defaults are V1. ``prod(upsample_rates)`` must
    equal the hop length. BigVGAN's generator keeps this layout (its AMP blocks take the residual
    blocks' place) and adds its own fields (``distgan.families.bigvgan.config``)."""

    # How far the activation before each convolution reads either side (0: a leaky ReLU), for the
    # receptive field that batched synthesis needs.
    activation_reach: ClassVar[int] = 0

    family: str = "hifigan"
    upsample_rates: list[int] = field(default_factory=lambda: [8, 8, 2, 2])
    upsample_kernel_sizes: list[int] = field(default_factory=lambda: [16, 16, 4, 4])
    upsample_initial_channel: int = 512
    resblock: Literal["1", "2"] = "1"
    resblock_kernel_sizes: list[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilation_sizes: list[list[int]] = field(
        default_factory=lambda: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    )
    # Recompute each residual (AMP) block's activations in the backward instead of keeping them
    # (torch.utils.checkpoint): less activation memory for longer segments or bigger batches, for
    # one more forward of those blocks.
    activation_checkpointing: bool = False


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def check_layout(cfg: Config) -> None:
    """The upsampling and residual-block layout fits together and the hop (HiFi-GAN, BigVGAN)."""
    a, g = cfg.audio, cfg.model.generator
    _need(math.prod(g.upsample_rates) == a.hop_length,
          f"model.generator.upsample_rates multiply to {math.prod(g.upsample_rates)}, "
          f"but audio.hop_length is {a.hop_length}; they must be equal")
    _need(len(g.upsample_kernel_sizes) == len(g.upsample_rates),
          "model.generator.upsample_kernel_sizes needs one entry per upsample rate")
    pairs = zip(g.upsample_kernel_sizes, g.upsample_rates, strict=False)
    _need(all((kernel - rate) % 2 == 0 for kernel, rate in pairs),
          "model.generator.upsample_kernel_sizes: each kernel must differ from its rate by an even number")
    _need(len(g.resblock_dilation_sizes) == len(g.resblock_kernel_sizes),
          "model.generator.resblock_dilation_sizes needs one list per resblock kernel size")
    _need(g.upsample_initial_channel % 2 ** len(g.upsample_rates) == 0,
          "model.generator.upsample_initial_channel must be divisible by 2**len(upsample_rates)")
