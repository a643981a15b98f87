"""EnCodec's residual vector quantizer, or DAC's in its place, behind one interface.

- ``ema`` (EnCodec's): ``distgan.models.ema_quantize.EMAResidualVQ``: Euclidean codebooks learnt
  by exponential moving averages of the frames assigned to them (k-means initialised, dead codes
  replaced), no projection, a commitment loss (the mean over the layers that ran) and no codebook
  loss. In training mode every layer that runs updates its codebook from the batch and averages the
  update over ranks, so all ranks must run the same layers: the objective draws one bandwidth per
  step, the same on every rank. Only the first ``n_q`` layers run (EnCodec's ``vq.layers[:n_q]``).
- ``factorized`` (DAC's, ``distgan.families.dac.quantize``): L2-normalised lookups in
  ``codebook_dim`` dimensions behind learnt projections, trained by its codebook loss. Every layer
  runs and the ones past ``n_q`` are masked out (as DAC's quantizer dropout does), so that each
  projection has a gradient on every step (DDP needs every parameter used).

``forward(z [B, D, T], n_q)`` -> (quantized ``[B, D, T]``, codes ``[B, n_q, T]``, commitment loss,
codebook loss); ``encode(z, n_q)`` -> codes; ``decode(codes [B, K, T])`` -> quantized.

The quantizer is the ``vq`` attribute, so EnCodec's keys (``quantizer.vq.layers.{i}._codebook.{inited,
cluster_size,embed,embed_avg}``) are the codec's own.
"""

from __future__ import annotations

import torch
from torch import nn

from distgan.families.dac.quantize import ResidualVectorQuantize

QUANTIZERS = ("ema", "factorized")


class CodecQuantizer(nn.Module):
    def __init__(self, kind: str, dim: int, n_q: int, codebook_size: int, *, decay: float = 0.99,
                 epsilon: float = 1e-5, kmeans_init: bool = True, kmeans_iters: int = 50,
                 dead_code_threshold: int = 2, codebook_dim: int = 8, seed: int = 0) -> None:
        super().__init__()
        if kind not in QUANTIZERS:
            raise ValueError(f"quantizer {kind!r}: one of {QUANTIZERS}")
        self.kind, self.n_q = kind, n_q
        self.vq: nn.Module
        if kind == "ema":
            from distgan.models.ema_quantize import EMAResidualVQ

            # commitment_weight 1: the weight is the objective's (model.generator.commitment_weight).
            self.vq = EMAResidualVQ(dim, n_q, codebook_size, decay=decay, epsilon=epsilon, kmeans_init=kmeans_init,
                                    kmeans_iters=kmeans_iters, threshold_ema_dead_code=dead_code_threshold,
                                    commitment_weight=1.0, seed=seed)
        else:
            self.vq = ResidualVectorQuantize(dim, n_q, codebook_size, codebook_dim)

    def forward(self, z: torch.Tensor, n_q: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.kind == "ema":
            quantized, codes, commitment = self.vq(z, n_q=n_q)
            return quantized, codes, commitment, torch.zeros_like(commitment)
        counts = torch.full((z.shape[0],), n_q, dtype=torch.long, device=z.device)
        quantized, codes, _, commitment, codebook = self.vq(z, counts)
        return quantized, codes[:, :n_q], commitment, codebook

    def encode(self, z: torch.Tensor, n_q: int) -> torch.Tensor:
        if self.kind == "ema":
            return self.vq.encode(z, n_q)
        return self.vq(z, n_q)[1]

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.vq.decode(codes) if self.kind == "ema" else self.vq.from_codes(codes)
