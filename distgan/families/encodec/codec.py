"""EnCodec (Défossez et al. 2022, ``encodec.model.EncodecModel``): SEANet encoder -> residual VQ ->
SEANet decoder, at one of several target bandwidths.

Shapes: audio ``[B, 1, T]`` -> latents ``[B, dimension, ceil(T / hop)]`` -> codes ``[B, n_q, frames]``
(int64) -> quantized latents -> audio ``[B, 1, T]`` (the decoder's output cropped to the input, as
EnCodec's ``forward``; decoding whole frames gives ``frames x hop`` samples).

Bandwidth, as EnCodec computes it: a code frame carries ``log2(codebook_size)`` bits per codebook
at ``frame_rate = ceil(sample_rate / hop)`` frames per second, so one codebook costs
``bandwidth_per_quantizer`` kbps (0.75 at 24 kHz) and a target bandwidth ``b`` uses
``max(1, floor(b / that))`` codebooks (``num_quantizers``: 2, 4, 8, 16, 32 for 1.5 ... 24 kbps). The
codec holds as many as the highest target needs (``EncodecModel._get_model``'s ``n_q``).

``forward(audio, n_q)`` takes the number of codebooks as a tensor (what the engines pass through
to the model: a scalar or one count per clip, all equal, since one bandwidth serves a whole
batch) or an int; reading it is a host read when the engine has moved it to the device.
It returns DAC's ``CodecOutput`` (``latents``: the encoder's output), so the step, the codec
validator and inference take either codec. EnCodec's audio normalisation and overlapping
segments (its 48 kHz model's) are not offered: its 24 kHz model uses neither.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from distgan.families.dac.codec import CodecOutput, fit
from distgan.families.encodec.quantize import CodecQuantizer
from distgan.families.encodec.seanet import SEANetDecoder, SEANetEncoder
from distgan.models.layers import fold_weight_norm


def bandwidth_per_quantizer(codebook_size: int, frame_rate: int) -> float:
    """kbps one codebook costs: ``log2(codebook_size)`` bits per frame at ``frame_rate``."""
    return math.log2(codebook_size) * frame_rate / 1000


def num_quantizers(bandwidth: float | None, codebook_size: int, frame_rate: int, n_q: int) -> int:
    """Codebooks a target ``bandwidth`` (kbps) uses, as ``get_num_quantizers_for_bandwidth``:
    ``n_q`` (all) for None or 0, else ``max(1, floor(bandwidth / bandwidth_per_quantizer))``."""
    if not bandwidth or bandwidth <= 0:
        return n_q
    return int(max(1, math.floor(bandwidth / bandwidth_per_quantizer(codebook_size, frame_rate))))


class EncodecCodec(nn.Module):
    def __init__(self, encoder: SEANetEncoder, decoder: SEANetDecoder, quantizer: CodecQuantizer,
                 sample_rate: int, target_bandwidths: list[float], codebook_size: int) -> None:
        super().__init__()
        self.encoder, self.quantizer, self.decoder = encoder, quantizer, decoder
        self.sample_rate, self.hop_length = sample_rate, encoder.hop_length
        self.target_bandwidths = list(target_bandwidths)
        self.codebook_size, self.n_codebooks = codebook_size, quantizer.n_q
        self.frame_rate = math.ceil(sample_rate / self.hop_length)

    def num_quantizers(self, bandwidth: float | None) -> int:
        return num_quantizers(bandwidth, self.codebook_size, self.frame_rate, self.n_codebooks)

    def _count(self, n_q: torch.Tensor | int | None) -> int:
        if n_q is None:
            return self.n_codebooks
        count = int(n_q.reshape(-1)[0]) if torch.is_tensor(n_q) else int(n_q)
        if not 1 <= count <= self.n_codebooks:
            raise ValueError(f"n_q={count}: between 1 and the codec's {self.n_codebooks} codebooks")
        return count

    def forward(self, audio: torch.Tensor, n_q: torch.Tensor | int | None = None) -> CodecOutput:
        """``[B, 1, T]`` -> ``CodecOutput`` at ``n_q`` codebooks (all if None)."""
        latents = self.encoder(audio)
        quantized, codes, commitment, codebook = self.quantizer(latents, self._count(n_q))
        return CodecOutput(fit(self.decoder(quantized), audio.shape[-1]), codes, latents, commitment, codebook)

    @torch.no_grad()
    def encode(self, audio: torch.Tensor, n_quantizers: int | None = None) -> torch.Tensor:
        """Audio ``[B, 1, T]`` -> codes ``[B, K, ceil(T / hop)]`` (int64; ``K``: ``n_quantizers`` or all)."""
        return self.quantizer.encode(self.encoder(audio), self._count(n_quantizers))

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Codes ``[B, K, frames]`` (the first ``K`` codebooks) -> audio ``[B, 1, frames x hop]``
        (``length`` samples if given)."""
        audio = self.decoder(self.quantizer.decode(codes))
        return audio if length is None else fit(audio, length)

    def remove_weight_norm(self) -> None:
        """Fold weight norm into plain weights (inference)."""
        fold_weight_norm(self)
