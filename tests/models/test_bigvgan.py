"""BigVGAN's modules on their own (no reference package): the anti-aliasing filter, Snake at its
initial value, generator shapes, hop and locality, and the MRD and CQT discriminators' outputs."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from distgan.families.bigvgan.activations import Snake, SnakeBeta
from distgan.families.bigvgan.filters import AntiAliasedActivation, kaiser_sinc_filter
from distgan.families.bigvgan.generator import BigVGANGenerator
from distgan.families.bigvgan.presets import GENERATOR_PRESETS
from distgan.models.mrd import MultiResolutionDiscriminator
from tests.models.helpers import single_thread

TINY = {"n_mels": 8, "upsample_rates": [4, 2], "upsample_kernel_sizes": [8, 4], "upsample_initial_channel": 16,
        "resblock": "1", "resblock_kernel_sizes": [3, 5], "resblock_dilation_sizes": [[1, 3], [1, 2]]}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    with single_thread():
        yield


def response(taps: torch.Tensor, frequency: float) -> float:
    """|H(f)| of an FIR filter, ``frequency`` in cycles per sample."""
    n = torch.arange(len(taps), dtype=torch.float64)
    return (taps.double() * torch.exp(-2j * math.pi * frequency * n)).sum().abs().item()


def tone(frequency: float, length: int) -> torch.Tensor:
    return torch.sin(2 * math.pi * frequency * torch.arange(length, dtype=torch.float32)).view(1, 1, -1)


def rms(x: torch.Tensor) -> float:
    return x.pow(2).mean().sqrt().item()


def test_resampling_filter_is_a_low_pass_at_the_original_nyquist_frequency() -> None:
    taps = kaiser_sinc_filter(0.25, 0.3, 12)  # in cycles per sample of the doubled rate
    assert taps.shape == (12,)
    assert taps.sum().item() == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(taps, taps.flip(0))  # linear phase
    assert all(response(taps, f) == pytest.approx(1.0, abs=0.01) for f in (0.0, 0.05, 0.1))
    assert response(taps, 0.25) == pytest.approx(0.5, abs=0.01)
    assert all(response(taps, f) < 0.005 for f in (0.4, 0.42, 0.45, 0.5))


def test_a_tone_above_half_the_doubled_rate_is_removed_before_decimation() -> None:
    """Decimating a 0.45 cycles/sample tone unfiltered would alias it to 0.1 at full amplitude."""
    block = AntiAliasedActivation(nn.Identity())
    high, low = tone(0.45, 800), tone(0.05, 800)
    assert rms(block.downsample(high)[..., 20:-20]) < 0.01 * rms(high)
    assert rms(block.downsample(low)[..., 20:-20]) == pytest.approx(rms(low), rel=0.01)


def test_the_round_trip_keeps_low_tones_and_constants() -> None:
    block = AntiAliasedActivation(nn.Identity())
    x = tone(0.05, 400)
    upsampled = block.upsample(x)[0, 0, 100:-100]
    assert upsampled.shape == (600,)
    # The interpolation adds no image of the tone above the original band (0.25 of the new rate).
    spectrum = torch.fft.rfft(upsampled).abs().pow(2)
    assert spectrum[torch.fft.rfftfreq(600) > 0.25].sum() < 1e-4 * spectrum.sum()
    torch.testing.assert_close(block(x)[..., 20:-20], x[..., 20:-20], rtol=0, atol=0.01)
    constant = torch.full((2, 3, 50), 0.7)  # replicate padding: no droop at the ends
    torch.testing.assert_close(block(constant), constant, rtol=0, atol=1e-6)


@pytest.mark.parametrize("logscale", [True, False])
def test_snake_starts_at_alpha_one(logscale: bool) -> None:
    x = torch.linspace(-4, 4, 101).view(1, 1, -1).expand(2, 3, -1)
    expected = x + torch.sin(x).pow(2)
    torch.testing.assert_close(Snake(3, logscale)(x), expected)
    torch.testing.assert_close(SnakeBeta(3, logscale)(x), expected)
    snake = Snake(3, logscale)
    with torch.no_grad():
        snake.alpha.fill_(math.log(2.0) if logscale else 2.0)
    torch.testing.assert_close(snake(x), x + torch.sin(2 * x).pow(2) / 2)


@pytest.mark.parametrize(("resblock", "activation", "tanh"), [("1", "snakebeta", False), ("2", "snake", True)])
def test_generator_output_shape_and_range(resblock: str, activation: str, tanh: bool) -> None:
    torch.manual_seed(0)
    generator = BigVGANGenerator(**{**TINY, "resblock": resblock, "resblock_dilation_sizes": [[1, 3], [1, 2]]},
                                 activation=activation, use_tanh_at_final=tanh, use_bias_at_final=tanh).eval()
    assert generator.hop_length == 8
    assert (generator.conv_post.bias is None) is not tanh
    with torch.no_grad():
        generator.conv_post.parametrizations.weight.original0.mul_(1e3)  # drive the output past +-1
        wave = generator(torch.randn(2, 8, 7))
    assert wave.shape == (2, 1, 7 * 8)
    assert wave.abs().max().item() <= 1.0
    if not tanh:  # clamped, not squashed: full scale is reached exactly
        assert (wave.abs() == 1.0).any()


def test_official_layouts_give_their_hop_length() -> None:
    for name, hop in {"v2_22khz_80band_256x": 256, "v2_44khz_128band_512x": 512, "v1_base_22khz_80band": 256}.items():
        narrow = {**GENERATOR_PRESETS[name], "upsample_initial_channel": 2 ** len(GENERATOR_PRESETS[name]["upsample_rates"])}
        generator = BigVGANGenerator(**narrow).eval()
        with torch.no_grad():
            wave = generator(torch.randn(1, narrow["n_mels"], 3))
        assert generator.hop_length == hop and wave.shape == (1, 1, 3 * hop)


def test_an_output_sample_reads_only_nearby_frames() -> None:
    torch.manual_seed(0)
    generator = BigVGANGenerator(**TINY).double()
    mel = torch.randn(1, 8, 60, dtype=torch.float64, requires_grad=True)
    sample = 30 * 8 + 3  # in frame 30
    generator(mel)[0, 0, sample].backward()
    frames = mel.grad.abs().sum(dim=(0, 1)).nonzero().flatten()
    assert frames.min() < 30 < frames.max()  # reads its own frame and both sides
    assert frames.min() > 5 and frames.max() < 55  # but not the whole clip


def test_remove_weight_norm_keeps_outputs() -> None:
    torch.manual_seed(0)
    generator = BigVGANGenerator(**TINY).eval()
    mel = torch.randn(1, 8, 5)
    with torch.no_grad():
        before = generator(mel)
        generator.remove_weight_norm()
        after = generator(mel)
    assert not any(parametrize.is_parametrized(m) for m in generator.modules())
    torch.testing.assert_close(after, before, rtol=0, atol=1e-6)
    assert not any("filter" in key for key in generator.state_dict())  # constants stay out


def test_initial_weights_are_pytorchs_default() -> None:
    """What NVIDIA's code effectively starts from (its N(0, 0.01) draw is overwritten by weight norm)."""
    torch.manual_seed(0)
    generator = BigVGANGenerator(**{**GENERATOR_PRESETS["v1_base_22khz_80band"], "upsample_initial_channel": 128})
    convs = [m for m in generator.modules() if isinstance(m, nn.Conv1d | nn.ConvTranspose1d)]
    assert len(convs) == 1 + 4 + 4 * 3 * 6 + 1
    for conv in convs:
        weight = conv.weight.detach()
        fan_in = weight.shape[1] * weight[0, 0].numel()
        assert weight.std().item() == pytest.approx((3 * fan_in) ** -0.5, rel=6 * 0.45 / weight.numel() ** 0.5)


def test_mrd_output_shapes() -> None:
    torch.manual_seed(0)
    mrd = MultiResolutionDiscriminator(channels=4).eval()
    length = 2400
    with torch.no_grad():
        logits, features = mrd(torch.randn(2, length))  # [B, T] is accepted
    assert len(logits) == len(features) == 3
    for (n_fft, hop, _), scale_logits, maps in zip([[1024, 120, 600], [2048, 240, 1200], [512, 50, 240]],
                                                   logits, features, strict=True):
        frames = (length + 2 * ((n_fft - hop) // 2) - n_fft) // hop + 1
        for _ in range(3):  # stride 2 along time
            frames = math.ceil(frames / 2)
        assert len(maps) == 6
        assert maps[0].shape[:3] == (2, 4, n_fft // 2 + 1)
        assert scale_logits.shape == (2, (n_fft // 2 + 1) * frames)


def test_cqt_discriminator_output_shapes_and_batch_independence() -> None:
    pytest.importorskip("nnAudio", reason="the CQT discriminator needs nnAudio")
    from distgan.models.cqt import MultiScaleSubbandCQTDiscriminator

    torch.manual_seed(0)
    cqt = MultiScaleSubbandCQTDiscriminator(22050, filters=8).eval()
    wave = torch.randn(2, 1, 1000) * 0.3
    with torch.no_grad():
        logits, features = cqt(wave)
        changed = wave.clone()
        changed[1] = 0.0
        other_logits, _ = cqt(changed.squeeze(1))
    assert len(logits) == len(features) == 3
    for hop, bins, scale_logits, maps in zip([512, 256, 256], [24, 36, 48], logits, features, strict=True):
        frames, width = 2 * 1000 // hop + 1, 9 * bins
        assert len(maps) == 3 + 2  # input conv, three dilated, one 3x3
        assert maps[0].shape == (2, 8, frames, width)
        for _ in range(3):  # stride 2 along frequency
            width = math.ceil(width / 2)
        assert scale_logits.shape == (2, frames * width)
    for before, after in zip(logits, other_logits, strict=True):
        torch.testing.assert_close(after[0], before[0], rtol=0, atol=1e-6)
        assert not torch.allclose(after[1], before[1])


@pytest.mark.parametrize("sample_rate", [22050, 24000, 44100])
def test_the_cqt_resampler_is_torchaudios_and_compiles_without_a_graph_break(sample_rate: int) -> None:
    """``DoubleRate``: torchaudio's output, bit for bit (any batch layout and length), and no graph
    break where torchaudio's reads its output length from a tensor (``perf.compile``)."""
    pytest.importorskip("nnAudio", reason="the CQT discriminator needs nnAudio")
    from torchaudio.transforms import Resample

    from distgan.models.cqt import CQTDiscriminator, DoubleRate

    ours, torchaudios = DoubleRate(sample_rate), Resample(sample_rate, 2 * sample_rate)
    assert ours.state_dict().keys() == torchaudios.state_dict().keys()  # NVIDIA's checkpoints load unchanged
    for shape in [(2, 1, 4096), (3, 1001), (1, 1, 1)]:
        wave = torch.randn(*shape)
        assert torch.equal(ours(wave), torchaudios(wave)), shape
    if sample_rate == 22050:
        explained = torch._dynamo.explain(CQTDiscriminator(sample_rate, 256, 7, 12, filters=4, max_filters=8))(
            torch.randn(1, 1, 2048))
        assert explained.graph_break_count == 0, explained.break_reasons
