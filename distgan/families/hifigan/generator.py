"""HiFi-GAN generator (Kong et al. 2020): log-mel frames in, waveform samples out.

A 7-tap input convolution, then one stage per upsample rate: a transposed convolution that
multiplies the time resolution by the rate and halves the channels, followed by multi-receptive-
field fusion (MRF), the mean of residual blocks with different kernel sizes and dilations, so each
stage sees both short and long patterns. A 7-tap output convolution and tanh give the waveform.

Every convolution carries weight norm through ``torch.nn.utils.parametrizations.weight_norm``:
the weight is recomputed from its magnitude and direction on each access, which happens after
DeepSpeed ZeRO-3 has gathered the partitioned parameters in its forward pre-hooks (the deprecated
hook-based ``torch.nn.utils.weight_norm`` computes it in a hook of its own, which may run first).
``remove_weight_norm`` folds the parametrizations into plain weights for inference and export.

Every convolution keeps PyTorch's default initialisation (uniform, std ``1 / sqrt(3 * fan_in)``),
which is what HiFi-GAN's code effectively starts from: its ``init_weights`` draws N(0, 0.01) into
``weight`` after ``weight_norm`` has replaced it by ``weight_g`` and ``weight_v``, and the next
forward recomputes ``weight`` from those, so the draw is lost (conv_post of V1 starts with std 0.037,
not 0.01). ``tests/models/test_hifigan_parity.py`` compares the two layer by layer.

With ``activation_checkpointing`` each residual block runs under ``torch.utils.checkpoint``: its
input is kept and its activations are recomputed in the backward (``fuse_blocks``, shared with
BigVGAN). Blocks hold nearly all activation memory and are pure functions of their input (no
dropout, no randomness), so the recomputation is exact and the only cost is one more forward of them.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm
from torch.utils.checkpoint import checkpoint

from distgan.families.hifigan.config import HiFiGANConfig

# Slope of the leaky ReLUs inside the generator (HiFi-GAN's LRELU_SLOPE).
LRELU_SLOPE = 0.1

GENERATOR_PRESETS: dict[str, HiFiGANConfig] = {
    # The paper's best quality: 13.92M parameters.
    "v1": HiFiGANConfig(),
    # V1's layout at a quarter of the width: 0.92M parameters.
    "v2": HiFiGANConfig(upsample_initial_channel=128),
    # Three stages and the lighter ResBlock2: 1.46M parameters, fastest.
    "v3": HiFiGANConfig(
        upsample_rates=[8, 8, 4],
        upsample_kernel_sizes=[16, 16, 8],
        upsample_initial_channel=256,
        resblock="2",
        resblock_kernel_sizes=[3, 5, 7],
        resblock_dilation_sizes=[[1, 2], [2, 6], [3, 12]],
    ),
}


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding that keeps the length of a stride-1 convolution with an odd kernel."""
    return (kernel_size - 1) * dilation // 2


def _dilated_convs(channels: int, kernel_size: int, dilations: list[int]) -> nn.ModuleList:
    """One length-preserving, weight-normed conv per dilation."""
    return nn.ModuleList(
        weight_norm(nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=same_padding(kernel_size, d)))
        for d in dilations
    )


class ResBlock1(nn.Module):
    """MRF block of V1/V2: per dilation, a dilated then an undilated conv, with a residual.

    ``[B, C, T] -> [B, C, T]``.
    """

    def __init__(self, channels: int, kernel_size: int, dilations: list[int]) -> None:
        super().__init__()
        self.dilated = _dilated_convs(channels, kernel_size, dilations)
        self.undilated = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, padding=same_padding(kernel_size)))
            for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, undilated in zip(self.dilated, self.undilated, strict=True):
            y = dilated(F.leaky_relu(x, LRELU_SLOPE))
            y = undilated(F.leaky_relu(y, LRELU_SLOPE))
            x = x + y
        return x


class ResBlock2(nn.Module):
    """MRF block of V3: one dilated conv per dilation, with a residual. ``[B, C, T] -> [B, C, T]``."""

    def __init__(self, channels: int, kernel_size: int, dilations: list[int]) -> None:
        super().__init__()
        self.dilated = _dilated_convs(channels, kernel_size, dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated in self.dilated:
            x = x + dilated(F.leaky_relu(x, LRELU_SLOPE))
        return x


RESBLOCKS: dict[str, type[ResBlock1] | type[ResBlock2]] = {"1": ResBlock1, "2": ResBlock2}


def fuse_blocks(blocks: nn.ModuleList, x: torch.Tensor, checkpointed: bool = False) -> torch.Tensor:
    """MRF: the mean of ``blocks`` applied to ``x``, accumulated rather than stacked to save memory.

    ``checkpointed`` (when gradients are on) keeps only ``x`` and recomputes each block's
    activations in the backward; the result and the gradients are the same.
    """
    def run(block: nn.Module) -> torch.Tensor:
        if checkpointed and torch.is_grad_enabled():
            return checkpoint(block, x, use_reentrant=False)
        return block(x)

    fused = run(blocks[0])
    for block in blocks[1:]:
        fused = fused + run(block)
    return fused / len(blocks)


class HiFiGANGenerator(nn.Module):
    """Log-mel ``[B, n_mels, frames]`` -> waveform ``[B, 1, frames * hop]`` in [-1, 1].

    ``hop = prod(cfg.upsample_rates)``. Stage ``i`` runs at ``prod(rates[:i + 1])`` steps per frame
    with ``upsample_initial_channel / 2**(i + 1)`` channels.
    """

    # How jik876/hifi-gan's state-dict keys map onto these modules' (for
    # ``distgan.models.reference_weights``): its residual blocks name their convolutions ``convs1``
    # and ``convs2`` (type 1) or ``convs`` (type 2).
    REFERENCE_RENAMES: ClassVar[tuple[tuple[str, str], ...]] = (
        (r"^(resblocks\.\d+)\.convs1\.", r"\1.dilated."),
        (r"^(resblocks\.\d+)\.convs2\.", r"\1.undilated."),
        (r"^(resblocks\.\d+)\.convs\.", r"\1.dilated."),
    )

    @property
    def reference_export_renames(self) -> tuple[tuple[str, str], ...]:
        """The inverse of ``REFERENCE_RENAMES``, which depends on the residual block type."""
        dilated = "convs1" if self.cfg.resblock == "1" else "convs"
        return ((r"^(resblocks\.\d+)\.dilated\.", rf"\1.{dilated}."),
                (r"^(resblocks\.\d+)\.undilated\.", r"\1.convs2."))

    def __init__(self, cfg: HiFiGANConfig, n_mels: int) -> None:
        super().__init__()
        if len(cfg.upsample_rates) != len(cfg.upsample_kernel_sizes):
            raise ValueError("upsample_kernel_sizes needs one entry per upsample rate")
        if cfg.resblock not in RESBLOCKS:
            raise ValueError(f"resblock must be one of {sorted(RESBLOCKS)}, got {cfg.resblock!r}")
        self.cfg = cfg
        self.activation_checkpointing = cfg.activation_checkpointing
        self.hop_length = math.prod(cfg.upsample_rates)
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        width = cfg.upsample_initial_channel
        self.conv_pre = weight_norm(nn.Conv1d(n_mels, width, 7, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        resblock = RESBLOCKS[cfg.resblock]
        for i, (rate, kernel) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes, strict=True)):
            if (kernel - rate) % 2:
                raise ValueError(f"upsample kernel {kernel} and rate {rate} must differ by an even number")
            channels_in, channels_out = width // 2**i, width // 2 ** (i + 1)
            self.ups.append(weight_norm(
                nn.ConvTranspose1d(channels_in, channels_out, kernel, rate, padding=(kernel - rate) // 2)))
            for kernel_size, dilations in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes,
                                              strict=True):
                self.resblocks.append(resblock(channels_out, kernel_size, dilations))
        self.conv_post = weight_norm(nn.Conv1d(width // 2 ** len(self.ups), 1, 7, padding=3))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            x = fuse_blocks(blocks, x, self.activation_checkpointing)
        # HiFi-GAN's last activation uses PyTorch's default slope (0.01), not LRELU_SLOPE.
        x = self.conv_post(F.leaky_relu(x))
        return torch.tanh(x)

    def remove_weight_norm(self) -> None:
        """Fold every weight-norm parametrization into a plain ``weight`` (outputs unchanged)."""
        fold_weight_norm(self)


def fold_weight_norm(model: nn.Module) -> None:
    """Replace every parametrized ``weight`` of ``model`` by its current value, a plain parameter."""
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)


def input_frame_span(cfg: HiFiGANConfig, sample: int) -> tuple[int, int]:
    """First and last input frame that output sample ``sample`` depends on (inclusive).

    Exact for a sample far enough from both ends that the padding does not cut the window (near an
    end the answer may reach below 0 or past the last frame). Walks the network backwards, mapping
    the interval of positions each layer reads from: ``[a, b] -> [a - p, b + p]`` for a "same"
    convolution or anti-aliased activation (BigVGAN) with reach ``p``, and, for a transposed
    convolution with kernel ``k``, stride ``u`` and padding ``q``,
    ``[ceil((a + q - k + 1) / u), floor((b + q) / u)]``. Either family: the activations' reach is
    the section's ``activation_reach`` (0 for HiFi-GAN's leaky ReLUs, 5 for BigVGAN's).
    """
    act = cfg.activation_reach
    lo, hi = sample - 3 - act, sample + 3 + act  # conv_post (after BigVGAN's activation_post)
    for i in reversed(range(len(cfg.upsample_rates))):
        reach = max(_resblock_reach(cfg.resblock, k, dilations, act)
                    for k, dilations in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes,
                                            strict=True))
        lo, hi = lo - reach, hi + reach
        rate, kernel = cfg.upsample_rates[i], cfg.upsample_kernel_sizes[i]
        pad = (kernel - rate) // 2
        lo, hi = -((-(lo + pad - kernel + 1)) // rate), (hi + pad) // rate
    return lo - 3, hi + 3  # conv_pre


def _resblock_reach(resblock: str, kernel_size: int, dilations: list[int], act: int = 0) -> int:
    """How many positions either side of its output a residual block reads; ``act``: the reach of
    the activation before each convolution (0 for a leaky ReLU)."""
    per_dilation = [act + same_padding(kernel_size, d) for d in dilations]
    if resblock == "1":
        per_dilation = [p + act + same_padding(kernel_size) for p in per_dilation]
    return sum(per_dilation)


def receptive_field(cfg: HiFiGANConfig) -> tuple[int, int]:
    """Input frames ``(before, after)`` any output sample may read, relative to its own frame.

    Output sample ``t`` lies in frame ``t // hop`` and depends on frames
    ``t // hop - before ... t // hop + after`` at most; the maximum is over the ``hop`` phases.
    """
    hop = math.prod(cfg.upsample_rates)
    spans = [input_frame_span(cfg, hop * 1000 + phase) for phase in range(hop)]
    return 1000 - min(lo for lo, _ in spans), max(hi for _, hi in spans) - 1000
