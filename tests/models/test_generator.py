"""HiFi-GAN generator: shapes and sizes of the paper's presets, receptive field, weight norm."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from distgan.families.hifigan.config import HiFiGANConfig as GeneratorConfig
from distgan.families.hifigan.generator import (
    GENERATOR_PRESETS,
    HiFiGANGenerator,
    input_frame_span,
    receptive_field,
)

TINY = GeneratorConfig(
    upsample_rates=[4, 4],
    upsample_kernel_sizes=[8, 8],
    upsample_initial_channel=16,
    resblock="1",
    resblock_kernel_sizes=[3, 5],
    resblock_dilation_sizes=[[1, 3], [1, 2]],
)
TINY_V3_STYLE = GeneratorConfig(
    upsample_rates=[4, 2],
    upsample_kernel_sizes=[8, 4],
    upsample_initial_channel=8,
    resblock="2",
    resblock_kernel_sizes=[3, 5],
    resblock_dilation_sizes=[[1, 2], [2, 6]],
)
CONFIGS = {**GENERATOR_PRESETS, "tiny": TINY, "tiny2": TINY_V3_STYLE}
# Kong et al. 2020, Table 1.
PAPER_PARAMS = {"v1": 13.92e6, "v2": 0.92e6, "v3": 1.46e6}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ["v1", "v2", "v3", "tiny"])
def test_output_shape(name: str) -> None:
    torch.manual_seed(0)
    n_mels = 80
    generator = HiFiGANGenerator(CONFIGS[name], n_mels=n_mels)
    with torch.no_grad():
        wave = generator(torch.randn(2, n_mels, 10))
    assert wave.shape == (2, 1, 10 * math.prod(CONFIGS[name].upsample_rates))
    assert wave.abs().max() <= 1.0  # tanh output
    if name != "tiny":
        assert wave.shape == (2, 1, 2560)


@pytest.mark.parametrize("name", ["v1", "v2", "v3"])
def test_parameter_count_matches_the_paper(name: str) -> None:
    generator = HiFiGANGenerator(GENERATOR_PRESETS[name], n_mels=80)
    with_norm = n_params(generator)
    generator.remove_weight_norm()
    # Weight norm adds one magnitude per output channel: about 0.1-0.3 % more parameters.
    assert 0 < with_norm - n_params(generator) < 0.004 * with_norm
    assert n_params(generator) == pytest.approx(PAPER_PARAMS[name], rel=0.02)


def test_every_conv_is_weight_normed_with_parametrizations() -> None:
    generator = HiFiGANGenerator(TINY, n_mels=8)
    convs = [m for m in generator.modules() if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))]
    assert len(convs) == 2 + 2 + 2 * (2 * 2 + 2 * 2)  # pre, post, ups, resblock convs
    for conv in convs:
        assert parametrize.is_parametrized(conv, "weight")
        assert not conv._forward_pre_hooks  # not the deprecated hook-based weight norm
    names = set(generator.state_dict())
    assert "conv_pre.parametrizations.weight.original0" in names  # magnitude g
    assert "conv_pre.parametrizations.weight.original1" in names  # direction v


def test_weights_start_at_pytorchs_default_scale_like_hifigans_code() -> None:
    """Uniform with std 1 / sqrt(3 fan_in) per layer, what HiFi-GAN's code effectively starts from
    (its N(0, 0.01) draw is overwritten by weight norm; see the module docstring)."""
    torch.manual_seed(0)
    generator = HiFiGANGenerator(GENERATOR_PRESETS["v2"], n_mels=80)
    convs = [m for m in generator.modules() if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))]
    for conv in convs:
        weight = conv.weight.detach()
        fan_in = weight.shape[1] * weight[0, 0].numel()  # PyTorch's: dim 1 is fan-in for both kinds
        # The sample std of n uniform draws has a relative spread of about 0.45 / sqrt(n).
        assert weight.std().item() == pytest.approx((3 * fan_in) ** -0.5, rel=6 * 0.45 / weight.numel() ** 0.5)
    assert generator.conv_post.weight.std().item() > 0.03  # not N(0, 0.01)


@pytest.mark.parametrize("name", ["v3", "tiny"])
def test_remove_weight_norm_keeps_outputs(name: str) -> None:
    torch.manual_seed(0)
    generator = HiFiGANGenerator(CONFIGS[name], n_mels=80).eval()
    mel = torch.randn(2, 80, 6)
    with torch.no_grad():
        before = generator(mel)
        generator.remove_weight_norm()
        after = generator(mel)
    assert not any(parametrize.is_parametrized(m) for m in generator.modules())
    assert "conv_pre.weight" in generator.state_dict()
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5)
    # The folded state dict loads into another folded generator (what export and load rely on).
    fresh = HiFiGANGenerator(CONFIGS[name], n_mels=80).eval()
    fresh.remove_weight_norm()
    fresh.load_state_dict(generator.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh(mel), after, rtol=0, atol=0)


def gradient_support(generator: HiFiGANGenerator, mel: torch.Tensor, sample: int) -> tuple[int, int]:
    """First and last input frame with a nonzero gradient of one output sample."""
    mel = mel.clone().requires_grad_(True)
    generator(mel)[0, 0, sample].backward()
    assert mel.grad is not None
    frames = mel.grad.abs().sum(dim=(0, 1)).nonzero().flatten()
    return int(frames.min()), int(frames.max())


@pytest.mark.parametrize("name", ["tiny", "tiny2"])
def test_receptive_field_is_exactly_the_gradient_support(name: str) -> None:
    cfg = CONFIGS[name]
    hop = math.prod(cfg.upsample_rates)
    torch.manual_seed(0)
    generator = HiFiGANGenerator(cfg, n_mels=4).double()
    mel = torch.randn(1, 4, 40, dtype=torch.float64)
    for sample in range(20 * hop, 21 * hop + 1, 3):  # every phase class of the hop, mid-clip
        assert gradient_support(generator, mel, sample) == input_frame_span(cfg, sample)
    before, after = receptive_field(cfg)
    spans = [input_frame_span(cfg, s) for s in range(20 * hop, 21 * hop)]
    assert before == 20 - min(lo for lo, _ in spans)
    assert after == max(hi for _, hi in spans) - 20


@pytest.mark.parametrize("name", ["v1", "v3"])
def test_preset_receptive_field(name: str) -> None:
    """A preset's output sample reads its own frame and at most 13 (V1) or 11 (V3) either side."""
    cfg = GENERATOR_PRESETS[name]
    hop = math.prod(cfg.upsample_rates)
    before, after = receptive_field(cfg)
    assert (before, after) == {"v1": (13, 13), "v3": (11, 11)}[name]
    # The window depends on kernels, dilations and rates, not on widths: a narrow copy of the
    # preset checks it at a fraction of the cost.
    narrow = dataclasses.replace(cfg, upsample_initial_channel=2 ** (len(cfg.upsample_rates) + 2))
    torch.manual_seed(0)
    generator = HiFiGANGenerator(narrow, n_mels=8).double()
    centre = before + 2
    mel = torch.randn(1, 8, centre + after + 3, dtype=torch.float64)
    # The first and last phase of a frame reach furthest back and furthest ahead.
    for sample in (centre * hop, centre * hop + hop - 1):
        first, last = gradient_support(generator, mel, sample)
        assert (first, last) == input_frame_span(cfg, sample)
        assert centre - before <= first and last <= centre + after
    # And in float32 inference, frames beyond the window leave the sample bit-for-bit unchanged.
    generator = generator.float().eval()
    mel = mel.float()
    first, last = input_frame_span(cfg, centre * hop)
    with torch.no_grad():
        reference = generator(mel)[0, 0, centre * hop]
        perturbed = mel.clone()
        perturbed[:, :, : first] += 5.0
        perturbed[:, :, last + 1:] += 5.0
        assert generator(perturbed)[0, 0, centre * hop] == reference
