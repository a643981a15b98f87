"""DAC's residual vector quantizer: factorised, L2-normalised code lookup, straight-through.

Each of ``n_codebooks`` layers projects its input residual ``[B, D, T]`` to ``codebook_dim``
dimensions (a weight-normed 1x1 convolution), picks per frame the codebook entry nearest in
cosine distance (both sides L2-normalised: Yu et al. 2022's improved VQGAN), passes the entry
through unchanged in the forward and the encoder's gradient straight through in the backward,
and projects back to ``D``; the next layer quantizes what is left.

Quantizer dropout (SoundStream) trains the first ``k`` layers alone for some clips: ``forward``
takes ``n_quantizers`` per clip (``[B]``: layer ``i`` counts for clip ``b`` if ``i <
n_quantizers[b]``; every layer still runs, as in DAC), drawn by the objective so that each rank
and step draws its own, reproducibly. An int (inference) stops after that many layers.

The commitment loss pulls the encoder towards its codes (``mse(z_e, sg(z_q))``), the codebook
loss the codes towards the encoder (``mse(sg(z_e), z_q)``), each the mean over the clips of the
layers that count for them, summed over layers, as ``dac.nn.quantize``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def wn_conv1d(*args, **kwargs) -> nn.Module:
    return weight_norm(nn.Conv1d(*args, **kwargs))


class VectorQuantize(nn.Module):
    """``[B, D, T]`` -> (quantized ``[B, D, T]``, commitment ``[B]``, codebook ``[B]``, codes
    ``[B, T]``, projected latents ``[B, codebook_dim, T]``)."""

    def __init__(self, input_dim: int, codebook_size: int, codebook_dim: int) -> None:
        super().__init__()
        self.codebook_size, self.codebook_dim = codebook_size, codebook_dim
        self.in_proj = wn_conv1d(input_dim, codebook_dim, kernel_size=1)
        self.out_proj = wn_conv1d(codebook_dim, input_dim, kernel_size=1)
        self.codebook = nn.Embedding(codebook_size, codebook_dim)

    def forward(self, z: torch.Tensor):
        z_e = self.in_proj(z)
        z_q, codes = self.nearest(z_e)
        commitment = F.mse_loss(z_e, z_q.detach(), reduction="none").mean([1, 2])
        codebook = F.mse_loss(z_q, z_e.detach(), reduction="none").mean([1, 2])
        z_q = z_e + (z_q - z_e).detach()  # straight-through
        return self.out_proj(z_q), commitment, codebook, codes, z_e

    def nearest(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected latents ``[B, d, T]`` -> (their entries ``[B, d, T]``, codes ``[B, T]``)."""
        batch = latents.shape[0]
        flat = F.normalize(latents.transpose(1, 2).reshape(-1, latents.shape[1]))
        book = F.normalize(self.codebook.weight)
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ book.t() + book.pow(2).sum(1, keepdim=True).t()
        codes = (-dist).max(1)[1].reshape(batch, -1)
        return self.lookup(codes), codes

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, T]`` -> their (unnormalised) entries ``[B, d, T]``."""
        return F.embedding(codes, self.codebook.weight).transpose(1, 2)


class ResidualVectorQuantize(nn.Module):
    def __init__(self, input_dim: int, n_codebooks: int, codebook_size: int, codebook_dim: int) -> None:
        super().__init__()
        self.n_codebooks, self.codebook_size = n_codebooks, codebook_size
        self.quantizers = nn.ModuleList(VectorQuantize(input_dim, codebook_size, codebook_dim)
                                        for _ in range(n_codebooks))

    def forward(self, z: torch.Tensor, n_quantizers: torch.Tensor | int | None = None):
        """``[B, D, T]`` -> (quantized ``[B, D, T]``, codes ``[B, K, T]``, latents ``[B, K * d, T]``,
        commitment loss, codebook loss); ``K`` is every layer unless ``n_quantizers`` is an int."""
        if n_quantizers is None:
            n_quantizers = self.n_codebooks
        layers = self.quantizers if torch.is_tensor(n_quantizers) else self.quantizers[:n_quantizers]
        z_q, residual = 0, z
        commitment = codebook = 0
        codes, latents = [], []
        for i, quantizer in enumerate(layers):
            z_q_i, commitment_i, codebook_i, codes_i, z_e_i = quantizer(residual)
            if torch.is_tensor(n_quantizers):
                mask = (i < n_quantizers).to(z_q_i.dtype)
                z_q = z_q + z_q_i * mask[:, None, None]
                commitment_i, codebook_i = commitment_i * mask, codebook_i * mask
            else:
                z_q = z_q + z_q_i
            residual = residual - z_q_i
            commitment = commitment + commitment_i.mean()
            codebook = codebook + codebook_i.mean()
            codes.append(codes_i)
            latents.append(z_e_i)
        return z_q, torch.stack(codes, dim=1), torch.cat(latents, dim=1), commitment, codebook

    def from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, K, T]`` (the first ``K`` layers) -> quantized ``[B, D, T]``."""
        return sum(self.quantizers[i].out_proj(self.quantizers[i].lookup(codes[:, i])) for i in range(codes.shape[1]))
