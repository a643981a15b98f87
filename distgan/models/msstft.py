"""Multi-scale STFT discriminator (MS-STFTD): EnCodec's discriminator (Défossez et al. 2022).

MPD and MSD judge the waveform, MRD the magnitude spectrum. MS-STFTD judges the complex spectrum:
the real and imaginary parts of an STFT are two input channels, so phase errors that leave the
magnitude intact are still seen. Each scale is one STFT resolution (EnCodec: five, from n_fft 2048
down to 128, hop a quarter of the window) followed by a small 2-D conv stack over (time,
frequency) that strides along frequency only and dilates along time (1, 2, 4), so every scale keeps
its full frame rate.

The STFT is torchaudio's ``Spectrogram(normalized=True, center=False)`` as EnCodec has it: a
periodic Hann window of ``win_length`` samples, no padding, divided by the window's L2 norm.
As in EnCodec's code the first convolution carries no weight norm (the others do), the
activations are LeakyReLU(0.2), and the feature maps are the activations of the stack, not the
logits.

Shapes: ``[B, 1, T]`` or ``[B, T]`` -> (per scale, logits ``[B, frames * F']`` and
``len(dilations) + 2`` feature maps ``[B, C, frames, F]``); ``frames = (T - n_fft) // hop + 1``,
``F = n_fft / 2 + 1`` at the input, halved (rounding up) by each dilated layer down to ``F'``.
With EnCodec's settings (32 filters, five scales) the set has 472,330 parameters.

State dicts: EnCodec wraps each convolution in a ``NormConv2d`` (``convs.0.conv.weight``) and keeps
the window in its state dict (``spec_transform.window``); ``REFERENCE_RENAMES`` maps its keys onto
these (``distgan.models.reference_weights.load_reference_state_dict``), and the export renames
and ``REFERENCE_BUFFERS`` map them back (``reference_state_dict``).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from distgan.models.cqt import spectral_conv_stack
from distgan.models.layers import Output, SetOutput, mono_batch

LRELU_SLOPE = 0.2
# EnCodec's five scales: (n_fft, hop_length); win_length = n_fft.
ENCODEC_N_FFTS = (1024, 2048, 512, 256, 128)
ENCODEC_HOP_LENGTHS = (256, 512, 128, 64, 32)


class STFTDiscriminator(nn.Module):
    """One STFT scale: ``[B, 1, T] -> (logits [B, N], feature maps)``."""

    window: torch.Tensor
    # The window is a constant (not in distgan's state dict); EnCodec's module keeps it.
    REFERENCE_BUFFERS: ClassVar[dict[str, str]] = {"spec_transform.window": "window"}

    def __init__(self, n_fft: int, hop_length: int, win_length: int, filters: int = 32,
                 max_filters: int = 1024, filters_scale: int = 1, dilations: list[int] | None = None,
                 normalized: bool = True) -> None:
        super().__init__()
        dilations = [1, 2, 4] if dilations is None else dilations
        self.n_fft, self.hop_length, self.win_length, self.normalized = n_fft, hop_length, win_length, normalized
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        parts = 2  # real and imaginary
        self.convs, self.conv_post = spectral_conv_stack(parts, min(filters_scale * filters, max_filters), filters,
                                                         filters_scale, max_filters, dilations)

    def spectrogram(self, wave: torch.Tensor) -> torch.Tensor:
        """``[B, 1, T] -> [B, 2, frames, n_fft / 2 + 1]``: real and imaginary parts."""
        window = self.window.to(wave.dtype)
        spec = torch.stft(wave.squeeze(1), n_fft=self.n_fft, hop_length=self.hop_length,
                          win_length=self.win_length, window=window, center=False, return_complex=True)
        if self.normalized:  # torchaudio's "window" normalisation, not torch.stft's 1 / sqrt(n_fft)
            spec = spec / window.square().sum().sqrt()
        return torch.view_as_real(spec).permute(0, 3, 2, 1)

    def forward(self, wave: torch.Tensor) -> Output:
        x = self.spectrogram(wave)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            features.append(x)
        return torch.flatten(self.conv_post(x), 1), features


class MultiScaleSTFTDiscriminator(nn.Module):
    """One ``STFTDiscriminator`` per ``(n_fft, hop, win)``: ``[B, 1, T] -> (logits, feature maps)``.

    Defaults are EnCodec's: 32 filters, n_fft 1024, 2048, 512, 256, 128 with a quarter hop and
    ``win_lengths = n_ffts``.
    """

    # EnCodec's NormConv2d wrapper (``convs.0.conv.weight``) and its window buffer.
    REFERENCE_RENAMES: ClassVar[tuple[tuple[str, str | None], ...]] = (
        (r"\.spec_transform\.window$", None),
        (r"\.conv\.(weight|weight_g|weight_v|bias)$", r".\1"),
    )
    REFERENCE_EXPORT_RENAMES: ClassVar[tuple[tuple[str, str | None], ...]] = (
        (r"(\.convs\.\d+|\.conv_post)\.(weight|weight_g|weight_v|bias)$", r"\1.conv.\2"),
    )

    def __init__(self, filters: int = 32, n_ffts: list[int] | None = None, hop_lengths: list[int] | None = None,
                 win_lengths: list[int] | None = None, max_filters: int = 1024, filters_scale: int = 1,
                 dilations: list[int] | None = None, normalized: bool = True) -> None:
        super().__init__()
        n_ffts = list(ENCODEC_N_FFTS) if n_ffts is None else n_ffts
        hop_lengths = list(ENCODEC_HOP_LENGTHS) if hop_lengths is None else hop_lengths
        win_lengths = list(n_ffts) if win_lengths is None else win_lengths
        if not len(n_ffts) == len(hop_lengths) == len(win_lengths):
            raise ValueError("n_ffts, hop_lengths and win_lengths need one entry per scale")
        self.discriminators = nn.ModuleList(
            STFTDiscriminator(n_fft, hop, win, filters, max_filters, filters_scale, dilations, normalized)
            for n_fft, hop, win in zip(n_ffts, hop_lengths, win_lengths, strict=True)
        )

    def forward(self, wave: torch.Tensor) -> SetOutput:
        wave = mono_batch(wave)
        outputs = [d(wave) for d in self.discriminators]
        return [logits for logits, _ in outputs], [features for _, features in outputs]
