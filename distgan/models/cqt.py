"""Multi-scale sub-band CQT discriminator (MS-SB-CQT-D): BigVGAN v2's second discriminator.

An STFT spaces its bins evenly in frequency, so low harmonics get few bins and high ones many; a
constant-Q transform (CQT) spaces them geometrically, a fixed number per octave, which matches how
pitch and harmonics are laid out (Gu et al. 2024, used by BigVGAN v2 in place of MRD). Each
sub-discriminator resamples the waveform to twice its rate (so the top CQT octave sits below the new
Nyquist frequency), takes a complex CQT (real and imaginary parts as two channels), runs one
convolution per octave (the sub-bands: octaves differ too much to share weights at the input),
concatenates the octaves back along frequency, then a 2-D conv stack over (time, frequency) with
stride 2 along frequency and growing dilation along time. Three scales differ in hop and bins per
octave.

The CQT is nnAudio's ``CQT2010v2`` and the resampler torchaudio's ``Resample`` (``DoubleRate``), as in NVIDIA's code;
both keep their kernels as buffers, under the same names as there, so reference checkpoints load
unchanged. nnAudio is imported when a CQT discriminator is built, so the rest of distgan does not
need it.

As in NVIDIA's code, the per-octave and first convolutions carry no weight norm, the feature maps
are the activations of the stack (not the logits), and ``normalize_volume`` (False in every official
recipe) removes the DC offset and scales each clip to a peak of 0.8 first.

Shapes: ``[B, 1, T]`` or ``[B, T]`` -> (per scale, logits ``[B, frames * bins']`` and
``len(dilations) + 2`` feature maps ``[B, C, frames, bins]``), ``frames = floor(2T / hop) + 1``,
``bins = n_octaves * bins_per_octave`` at the input, halved (rounding up) by each dilated layer down to ``bins'``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm
from torchaudio.transforms import Resample

from distgan.models.layers import Output, SetOutput, mono_batch

LRELU_SLOPE = 0.1
KERNEL = (3, 9)  # (time, frequency)


def _padding(kernel: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    return (kernel[0] - 1) * dilation[0] // 2, (kernel[1] - 1) * dilation[1] // 2


def spectral_conv_stack(in_channels: int, width: int, filters: int, filters_scale: int, max_filters: int,
                        dilations: list[int]) -> tuple[nn.ModuleList, nn.Module]:
    """The 2-D stack that EnCodec's MS-STFT D and BigVGAN-v2's CQT D share, over ``[B, parts,
    frames, bins]``: a plain first convolution to ``filters`` channels, one weight-normed
    convolution per dilation (time-dilated, frequency stride 2), a 3x3 one; and the 3x3 head to
    one channel. ``width`` is what the first dilated convolution takes (the two originals differ:
    ``filters`` in the CQT D, ``min(filters_scale * filters, max_filters)`` in the MS-STFT D)."""
    convs = nn.ModuleList([nn.Conv2d(in_channels, filters, KERNEL, padding=_padding(KERNEL))])
    for i, dilation in enumerate(dilations):
        out = min(filters_scale ** (i + 1) * filters, max_filters)
        convs.append(weight_norm(nn.Conv2d(width, out, KERNEL, stride=(1, 2), dilation=(dilation, 1),
                                           padding=_padding(KERNEL, (dilation, 1)))))
        width = out
    out = min(filters_scale ** (len(dilations) + 1) * filters, max_filters)
    convs.append(weight_norm(nn.Conv2d(width, out, (3, 3), padding=(1, 1))))
    return convs, weight_norm(nn.Conv2d(out, 1, (3, 3), padding=(1, 1)))


def _constant_q_transform(sample_rate: int, hop_length: int, n_bins: int, bins_per_octave: int) -> nn.Module:
    """nnAudio's CQT, imported here so that only a CQT discriminator needs nnAudio."""
    try:
        from nnAudio.features.cqt import CQT2010v2
    except ImportError as err:
        raise ImportError("the CQT discriminator needs nnAudio: pip install nnAudio") from err
    return CQT2010v2(sr=sample_rate, hop_length=hop_length, n_bins=n_bins, bins_per_octave=bins_per_octave,
                     output_format="Complex", pad_mode="constant", verbose=False)


class DoubleRate(Resample):
    """torchaudio's ``Resample`` to twice the rate (same kernel buffer, same output), with the output
    length computed as a Python int: torchaudio computes it as a tensor and slices by its value,
    which under ``perf.compile`` breaks the graph at every call (one break per CQT scale)."""

    def __init__(self, sample_rate: int) -> None:
        super().__init__(orig_freq=sample_rate, new_freq=2 * sample_rate)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        # Reduced by their gcd the rates are 1 -> 2: a stride-1 convolution yields 2 output
        # samples per input sample (the kernel's 2 phases), of which 2 T are kept.
        flat = wave.reshape(-1, wave.shape[-1])
        padded = F.pad(flat, (self.width, self.width + 1))
        out = F.conv1d(padded[:, None], self.kernel).transpose(1, 2).reshape(flat.shape[0], -1)
        return out[:, :2 * wave.shape[-1]].reshape(*wave.shape[:-1], -1)


class CQTDiscriminator(nn.Module):
    """One CQT scale: ``[B, 1, T] -> (logits [B, N], feature maps)``."""

    def __init__(self, sample_rate: int, hop_length: int, n_octaves: int, bins_per_octave: int,
                 filters: int = 128, max_filters: int = 1024, filters_scale: int = 1,
                 dilations: list[int] | None = None, normalize_volume: bool = False) -> None:
        super().__init__()
        dilations = [1, 2, 4] if dilations is None else dilations
        self.n_octaves, self.bins_per_octave = n_octaves, bins_per_octave
        self.normalize_volume = normalize_volume
        self.resample = DoubleRate(sample_rate)
        self.cqt_transform = _constant_q_transform(sample_rate * 2, hop_length, n_octaves * bins_per_octave,
                                                   bins_per_octave)
        parts = 2  # real and imaginary
        self.conv_pres = nn.ModuleList(nn.Conv2d(parts, parts, KERNEL, padding=_padding(KERNEL))
                                       for _ in range(n_octaves))
        self.convs, self.conv_post = spectral_conv_stack(parts, filters, filters, filters_scale, max_filters,
                                                         dilations)

    def forward(self, wave: torch.Tensor) -> Output:
        if self.normalize_volume:
            wave = wave - wave.mean(dim=-1, keepdim=True)
            wave = 0.8 * wave / (wave.abs().amax(dim=-1, keepdim=True) + 1e-9)
        cqt = self.cqt_transform(self.resample(wave))  # [B, bins, frames, (real, imag)]
        x = cqt.permute(0, 3, 2, 1)  # [B, 2, frames, bins]
        octaves = [conv(x[..., i * self.bins_per_octave:(i + 1) * self.bins_per_octave])
                   for i, conv in enumerate(self.conv_pres)]
        x = torch.cat(octaves, dim=-1)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            features.append(x)
        return torch.flatten(self.conv_post(x), 1), features


class MultiScaleSubbandCQTDiscriminator(nn.Module):
    """One ``CQTDiscriminator`` per (hop, octaves, bins per octave): ``[B, 1, T] -> (logits, feature maps)``.

    Defaults are BigVGAN v2's: hops 512, 256, 256; 9 octaves each; 24, 36, 48 bins per octave;
    128 filters. ``sample_rate`` is the audio's (the CQT runs at twice it). nnAudio's lowest bin is
    32.7 Hz, so 9 octaves need ``sample_rate`` above about 16.5 kHz with 48 bins per octave (the top
    bin, ``32.7 * 2 ** (octaves - 1 / bins)`` Hz, must not pass the doubled rate's Nyquist frequency;
    nnAudio refuses otherwise, and ``distgan.config.checks`` before any process group starts).
    """

    def __init__(self, sample_rate: int, hop_lengths: list[int] | None = None,
                 n_octaves: list[int] | None = None, bins_per_octaves: list[int] | None = None,
                 filters: int = 128, max_filters: int = 1024, filters_scale: int = 1,
                 dilations: list[int] | None = None, normalize_volume: bool = False) -> None:
        super().__init__()
        hop_lengths = [512, 256, 256] if hop_lengths is None else hop_lengths
        n_octaves = [9, 9, 9] if n_octaves is None else n_octaves
        bins_per_octaves = [24, 36, 48] if bins_per_octaves is None else bins_per_octaves
        if not len(hop_lengths) == len(n_octaves) == len(bins_per_octaves):
            raise ValueError("hop_lengths, n_octaves and bins_per_octaves need one entry per scale")
        self.discriminators = nn.ModuleList(
            CQTDiscriminator(sample_rate, hop, octaves, bins, filters, max_filters, filters_scale, dilations,
                             normalize_volume)
            for hop, octaves, bins in zip(hop_lengths, n_octaves, bins_per_octaves, strict=True)
        )

    def forward(self, wave: torch.Tensor) -> SetOutput:
        wave = mono_batch(wave)
        outputs = [d(wave) for d in self.discriminators]
        return [logits for logits, _ in outputs], [features for _, features in outputs]
