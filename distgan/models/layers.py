"""What every discriminator set shares: its output types, the ``[B, 1, T]`` input check and the
leaky-ReLU conv stack.

Apart from ``discriminators.py`` so that the BigVGAN sets (``bigvgan/mrd.py``, ``bigvgan/cqt.py``)
can build on it while ``discriminators.Discriminators`` builds on them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

LRELU_SLOPE = 0.1

# One sub-discriminator: (logits [B, N], feature maps); a set: one entry per sub-discriminator.
Output = tuple[torch.Tensor, list[torch.Tensor]]
SetOutput = tuple[list[torch.Tensor], list[list[torch.Tensor]]]


def mono_batch(wave: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` or ``[B, 1, T]`` -> ``[B, 1, T]``: every discriminator set accepts both."""
    if wave.dim() == 2:
        wave = wave.unsqueeze(1)
    if wave.dim() != 3 or wave.shape[1] != 1:
        raise ValueError(f"expected a waveform [B, T] or [B, 1, T], got {tuple(wave.shape)}")
    return wave


def conv_stack(convs: nn.ModuleList, conv_post: nn.Module, x: torch.Tensor) -> Output:
    """Leaky-ReLU conv stack; every activation and the logits are feature maps."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        features.append(x)
    x = conv_post(x)
    features.append(x)
    return torch.flatten(x, 1), features


def fold_weight_norm(model: nn.Module) -> None:
    """Fold every parametrized weight (weight norm) into a plain one: inference's
    ``remove_weight_norm`` for models built with ``torch.nn.utils.parametrizations.weight_norm``."""
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
