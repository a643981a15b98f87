"""DAC's codec (Kumar et al. 2023, ``dac.model.DAC``): a strided convolutional encoder with Snake
activations, the residual vector quantizer (``quantize.py``) and a transposed-convolution decoder.

Shapes: audio ``[B, 1, T]`` -> encoder -> latents ``[B, latent_dim, T / hop]`` (``hop`` = the
product of ``encoder_rates``) -> quantizer -> codes ``[B, n_codebooks, T / hop]`` and quantized
latents -> decoder -> audio ``[B, 1, T]``. ``forward`` right-pads the clip to a multiple of the
hop and crops the output back, as DAC does. An odd decoder stride (DAC's 24 and 16 kHz layouts)
gives one sample fewer than ``stride x`` its input, so a clip of whole frames decodes 8 samples
short; DAC returns it short (and its losses then fail on the mismatch), distgan pads the tail
with zeros to the clip's length (``fit``). Training segments that would decode short are refused
by the config check (``DACConfig.decoded_samples``), so only inference and validation, which take
whole clips, ever pad.

The modules are laid out as DAC's (``encoder.block``, ``quantizer.quantizers``, ``decoder.model``,
the same indices), so a DAC state dict maps key for key; only weight norm's leaves differ
(parametrizations here, ``weight_g``/``weight_v`` there: ``distgan.models.reference_weights``).
DAC's ``init_weights`` draws a truncated normal into each convolution's ``weight``, which under
weight norm is recomputed from ``g`` and ``v`` at the next forward, so what survives of it is the
zeroed biases of the ``Conv1d`` layers; that is what ``reset_biases`` does.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from distgan.families.dac.quantize import ResidualVectorQuantize, wn_conv1d
from distgan.models.layers import fold_weight_norm


class Snake1d(nn.Module):
    """``x + sin(alpha x)^2 / alpha`` with a learned ``alpha`` per channel (``[B, C, T]`` in and out)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (self.alpha + 1e-9).reciprocal() * torch.sin(self.alpha * x).pow(2)


class ResidualUnit(nn.Module):
    def __init__(self, dim: int, dilation: int) -> None:
        super().__init__()
        self.block = nn.Sequential(Snake1d(dim), wn_conv1d(dim, dim, 7, dilation=dilation, padding=3 * dilation),
                                   Snake1d(dim), wn_conv1d(dim, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def residual_units(dim: int) -> list[nn.Module]:
    return [ResidualUnit(dim, dilation) for dilation in (1, 3, 9)]


class EncoderBlock(nn.Module):
    """``[B, dim / 2, T]`` -> ``[B, dim, T / stride]``."""

    def __init__(self, dim: int, stride: int) -> None:
        super().__init__()
        self.block = nn.Sequential(*residual_units(dim // 2), Snake1d(dim // 2),
                                   wn_conv1d(dim // 2, dim, 2 * stride, stride=stride, padding=math.ceil(stride / 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Encoder(nn.Module):
    def __init__(self, dim: int, rates: list[int], latent_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [wn_conv1d(1, dim, 7, padding=3)]
        for stride in rates:
            dim *= 2
            layers.append(EncoderBlock(dim, stride))
        layers += [Snake1d(dim), wn_conv1d(dim, latent_dim, 3, padding=1)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class DecoderBlock(nn.Module):
    """``[B, in_dim, T]`` -> ``[B, out_dim, T * stride]``."""

    def __init__(self, in_dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        up = weight_norm(nn.ConvTranspose1d(in_dim, out_dim, 2 * stride, stride=stride, padding=math.ceil(stride / 2)))
        self.block = nn.Sequential(Snake1d(in_dim), up, *residual_units(out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Decoder(nn.Module):
    def __init__(self, latent_dim: int, dim: int, rates: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = [wn_conv1d(latent_dim, dim, 7, padding=3)]
        for i, stride in enumerate(rates):
            layers.append(DecoderBlock(dim // 2**i, dim // 2 ** (i + 1), stride))
        out = dim // 2 ** len(rates)
        layers += [Snake1d(out), wn_conv1d(out, 1, 7, padding=3), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def fit(audio: torch.Tensor, length: int) -> torch.Tensor:
    """``[..., T']`` cropped or zero-padded at the end to ``[..., length]``."""
    return nn.functional.pad(audio, (0, max(0, length - audio.shape[-1])))[..., :length]


class CodecOutput(NamedTuple):
    """What the codec's training forward returns; ``audio`` is what the discriminator judges."""

    audio: torch.Tensor  # [B, 1, T]
    codes: torch.Tensor  # [B, n_codebooks, frames]
    latents: torch.Tensor  # [B, n_codebooks * codebook_dim, frames]
    commitment_loss: torch.Tensor
    codebook_loss: torch.Tensor


class DACCodec(nn.Module):
    def __init__(self, encoder_dim: int, encoder_rates: list[int], latent_dim: int, decoder_dim: int,
                 decoder_rates: list[int], n_codebooks: int, codebook_size: int, codebook_dim: int,
                 sample_rate: int) -> None:
        super().__init__()
        self.sample_rate, self.hop_length = sample_rate, math.prod(encoder_rates)
        self.n_codebooks, self.codebook_size = n_codebooks, codebook_size
        self.encoder = Encoder(encoder_dim, encoder_rates, latent_dim)
        self.quantizer = ResidualVectorQuantize(latent_dim, n_codebooks, codebook_size, codebook_dim)
        self.decoder = Decoder(latent_dim, decoder_dim, decoder_rates)
        self.reset_biases()

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def reset_biases(self) -> None:
        for module in self.modules():
            if type(module) is nn.Conv1d:
                nn.init.zeros_(module.bias)

    def pad(self, audio: torch.Tensor) -> torch.Tensor:
        """Right-pad ``[B, 1, T]`` with zeros to a multiple of the hop."""
        return nn.functional.pad(audio, (0, -audio.shape[-1] % self.hop_length))

    def forward(self, audio: torch.Tensor, n_quantizers: torch.Tensor | int | None = None) -> CodecOutput:
        """``[B, 1, T]`` -> ``CodecOutput``; ``n_quantizers``: per clip ``[B]`` (quantizer dropout)
        or an int (the first that many codebooks), None for all."""
        length = audio.shape[-1]
        z, codes, latents, commitment, codebook = self.quantizer(self.encoder(self.pad(audio)), n_quantizers)
        return CodecOutput(fit(self.decoder(z), length), codes, latents, commitment, codebook)

    @torch.no_grad()
    def encode(self, audio: torch.Tensor, n_quantizers: int | None = None) -> torch.Tensor:
        """Audio ``[B, 1, T]`` -> codes ``[B, K, ceil(T / hop)]`` (int64; ``K``: ``n_quantizers`` or all)."""
        return self.quantizer(self.encoder(self.pad(audio)), n_quantizers)[1]

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Codes ``[B, K, frames]`` (the first ``K`` codebooks) -> audio ``[B, 1, about frames * hop]``
        (``length`` samples if given: cropped, or zero-padded after an odd stride)."""
        audio = self.decoder(self.quantizer.from_codes(codes))
        return audio if length is None else fit(audio, length)

    def remove_weight_norm(self) -> None:
        """Fold weight norm into plain weights (inference)."""
        fold_weight_norm(self)
