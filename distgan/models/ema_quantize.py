"""EMA residual vector quantization (SoundStream's Algorithm 1, as EnCodec trains it), whose
codebooks stay one codebook across data-parallel ranks. Latents ``[B, D, T]``, codes ``[B, n_q, T]``.

It computes what ``encodec.quantization.core_vq`` (0.1.1) computes, which
``tests/models/test_ema_quantize_parity.py`` checks: each code is the nearest by Euclidean
distance; a training forward updates exponential moving averages (``decay``) of how many vectors
each code was assigned (``cluster_size``) and of their sum (``embed_avg``), and the code becomes
their ratio, the counts Laplace-smoothed (``epsilon``); the codebook starts from k-means
(``kmeans_iters``) on the first training batch; each layer adds the commitment loss
``mse(x, sg(q)) * commitment_weight`` and passes gradients straight through. The loss returned is
the mean over the layers that ran (EnCodec's ``ResidualVectorQuantizer`` penalty).

Where it differs, and why:

- **A dead-code restart takes effect.** In encodec 0.1.1 ``replace_`` writes only ``embed``, and
  the EMA update of the same forward then overwrites every row of ``embed`` with
  ``embed_avg / cluster_size``: the restart leaves no trace (the parity test shows it), and its
  ``broadcast_tensors`` would copy rank 0's buffers rather than combine the ranks. Here a code whose
  EMA count was below ``threshold_ema_dead_code`` before the step is set, after the update, to a
  vector ``v`` of the step's (global) batch: ``embed = v``, ``embed_avg = threshold * v``,
  ``cluster_size = threshold``, as if it had just reached the threshold at ``v``.
- **Initialisation only in a training forward** (encodec's runs in any forward): an eval forward
  may run on one rank alone (validation), where the initialisation's collectives would hang.
- **No global RNG.** The k-means start, the restart picks and the uniform start without k-means
  draw from a ``torch.Generator`` on the data's device keyed by (``seed``, layer, the ``steps``
  buffer, purpose), so a resumed run draws what the uninterrupted one would have.
- **fp32 whatever the run's dtype**: distances and statistics run with autocast off in fp32, and
  the buffers stay fp32 (``keeps_fp32_buffers``, which ``distgan.train.deepspeed_engine`` honours).

Ranks: the codebook never touches ``torch.distributed``; it hands its statistics to a
``StatisticsReducer`` (by default this process alone; over several ranks the engine builder attaches
one over the process group, ``distgan.train.codebook_sync``). Per layer and training step that is one all-reduce of one fp32 vector
``[counts K | sums K*D | restart picks K*D | vectors per rank W]``: every rank gets the same sums
and applies the same update, so the codebooks stay bit-identical and equal those of one process
on the concatenated batch (to fp32 summation). A restart pick is a global index into that batch,
drawn the same on every rank; the rank whose slice holds it contributes the vector, the others
zeros. Slices must hold equally many vectors (that is what makes an index global); a rank whose
count changed reads the per-rank counts and refuses a mismatch, naming the layer and the counts.
Every rank must run the same layers (the same ``n_q``) in the same steps. The first training
forward of a layer also gathers the global batch, runs k-means on rank 0 and shares its result
(three more collectives, once per run). After the first step there is no host read.

State dict: encodec's keys, ``layers.{i}._codebook.{inited,cluster_size,embed,embed_avg}``, plus
``steps`` (int64, training forwards so far); a state dict without it (encodec's) loads with 0.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

KMEANS, RESTART, UNIFORM = 0, 1, 2  # purposes of a keyed draw
EXACT_COUNT = 2**24  # fp32 holds every integer up to here: the per-rank vector counts ride in fp32
CHUNK_ROWS = 8192  # k-means distances a chunk of samples at a time ([rows, K] floats)


class StatisticsReducer(Protocol):
    """How a codebook combines its statistics with the other data-parallel processes'."""

    @property
    def world_size(self) -> int: ...

    @property
    def rank(self) -> int: ...

    def all_reduce_sum(self, tensor: torch.Tensor) -> None:
        """Sum ``tensor`` over processes, in place; every process gets the same bits."""

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every process's ``tensor`` (the same shape on each), in rank order."""


class LocalReducer:
    """This process alone."""

    world_size = 1
    rank = 0

    def all_reduce_sum(self, tensor: torch.Tensor) -> None:
        return None

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        return [tensor]


def _mix(value: int) -> int:
    """splitmix64's finaliser: nearby keys give unrelated seeds."""
    mask = (1 << 64) - 1
    z = (value + 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def keyed_generator(device: torch.device | str, *key: int) -> torch.Generator:
    """A generator on ``device`` seeded from ``key`` alone (same key, same device type: same draws)."""
    seed = 0
    for part in key:
        seed = _mix(seed ^ part)
    device = torch.device(device)
    generator = torch.Generator(device="cpu" if device.type == "cpu" else device)
    return generator.manual_seed(seed & ((1 << 63) - 1))


def sample_indices(available: int, count: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """``count`` indices into ``available`` rows: distinct where there are enough rows."""
    if available >= count:
        return torch.randperm(available, generator=generator, device=device)[:count]
    return torch.randint(0, available, (count,), generator=generator, device=device)


def nearest(x: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
    """The nearest row of ``embed`` [K, D] for each row of ``x`` [N, D] (encodec's expansion of the distance)."""
    codes_t = embed.t()
    neg_distance = -(x.pow(2).sum(1, keepdim=True) - 2 * x @ codes_t + codes_t.pow(2).sum(0, keepdim=True))
    return neg_distance.max(dim=-1).indices


def kmeans(samples: torch.Tensor, clusters: int, iters: int, generator: torch.Generator
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means from ``clusters`` sampled rows: the means [K, D] and the counts [K] of the
    last assignment (an empty cluster keeps its mean), as encodec's ``kmeans``."""
    means = samples[sample_indices(samples.shape[0], clusters, generator, samples.device)]
    counts = torch.zeros(clusters, device=samples.device)
    for _ in range(iters):
        codes = torch.cat([nearest(chunk, means) for chunk in samples.split(CHUNK_ROWS)])
        counts = torch.bincount(codes, minlength=clusters).float()
        sums = torch.zeros_like(means).index_add_(0, codes, samples)
        means = torch.where((counts == 0)[:, None], means, sums / counts.clamp(min=1)[:, None])
    return means, counts


class EuclideanCodebook(nn.Module):
    """One EMA codebook: ``forward(x [N, D]) -> (quantized [N, D] in x's dtype, codes [N])``."""

    keeps_fp32_buffers = True  # distgan.train.deepspeed_engine leaves this module's buffers fp32

    def __init__(self, dim: int, codebook_size: int, kmeans_init: bool = True, kmeans_iters: int = 50,
                 decay: float = 0.99, epsilon: float = 1e-5, threshold_ema_dead_code: int = 2, seed: int = 0,
                 layer: int = 0) -> None:
        super().__init__()
        self.codebook_size, self.kmeans_iters, self.decay, self.epsilon = codebook_size, kmeans_iters, decay, epsilon
        self.threshold = threshold_ema_dead_code
        self.seed, self.layer = seed, layer
        if kmeans_init:
            embed = torch.zeros(codebook_size, dim)
        else:  # encodec's kaiming-uniform start: U(-sqrt(6 / dim), sqrt(6 / dim))
            draws = torch.rand(codebook_size, dim, generator=keyed_generator("cpu", seed, layer, 0, UNIFORM))
            embed = (draws * 2 - 1) * math.sqrt(6 / dim)
        self.register_buffer("inited", torch.tensor([float(not kmeans_init)]))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.reducer: StatisticsReducer = LocalReducer()
        # Host copies of ``inited`` and ``steps``, valid while the buffer's storage and version are
        # the ones recorded (anyone else's write, a load or a copy_, makes it read once more).
        self._host: dict[str, tuple[tuple[int, int], int]] = {}
        self._verified_size: int | None = None  # the vector count the ranks last agreed on

    def _host_value(self, name: str) -> int:
        buffer = getattr(self, name)
        cached = self._host.get(name)
        if cached is None or cached[0] != (buffer.data_ptr(), buffer._version):
            cached = ((buffer.data_ptr(), buffer._version), int(buffer.reshape(-1)[0].item()))
            self._host[name] = cached
        return cached[1]

    def _set_host_value(self, name: str, value: int) -> None:
        buffer = getattr(self, name)
        self._host[name] = ((buffer.data_ptr(), buffer._version), value)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,  # noqa: ANN001
                              unexpected_keys, error_msgs) -> None:
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        if prefix + "steps" in missing_keys:  # encodec's state dict: no steps counted yet
            missing_keys.remove(prefix + "steps")
            self.steps.zero_()
        self._host.clear()
        self._verified_size = None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return nearest(x.detach().float(), self.embed)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return F.embedding(codes, self.embed)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(x.device.type, enabled=False):
            flat = x.detach().float()
            if self.training and not self._host_value("inited"):
                self._initialise(flat)
            codes = nearest(flat, self.embed)
            quantized = F.embedding(codes, self.embed)
            if self.training:
                self._update(flat, codes)
        return quantized.to(x.dtype), codes

    def _check_sizes(self, sizes: torch.Tensor, size: int) -> None:
        counts = [int(s) for s in sizes.tolist()]
        if any(c != size for c in counts):
            raise ValueError(f"EMA codebook layer {self.layer}: ranks bring different numbers of vectors "
                             f"{counts} (per rank); a restart's global index needs equal slices")
        self._verified_size = size

    def _sizes(self, size: int, device: torch.device) -> torch.Tensor:
        if not 0 < size < EXACT_COUNT:
            raise ValueError(f"EMA codebook layer {self.layer}: {size} vectors in a step, need 1 to {EXACT_COUNT - 1}")
        sizes = torch.zeros(self.reducer.world_size, device=device)
        sizes[self.reducer.rank] = size
        return sizes

    @torch.no_grad()
    @torch.compiler.disable
    def _initialise(self, flat: torch.Tensor) -> None:
        """k-means on the global batch, run on rank 0 and shared by a sum the others add zeros to
        (so every rank holds its bits, whatever the device's kernels do)."""
        reducer, size, k = self.reducer, flat.shape[0], self.codebook_size
        samples = flat
        if reducer.world_size > 1:
            sizes = self._sizes(size, flat.device)
            reducer.all_reduce_sum(sizes)
            self._check_sizes(sizes, size)
            samples = torch.cat(reducer.all_gather(flat.contiguous()))
        shared = torch.zeros(k * flat.shape[1] + k, device=flat.device)
        if reducer.rank == 0:
            generator = keyed_generator(flat.device, self.seed, self.layer, self._host_value("steps"), KMEANS)
            means, counts = kmeans(samples, k, self.kmeans_iters, generator)
            shared = torch.cat([means.reshape(-1), counts])
        if reducer.world_size > 1:
            reducer.all_reduce_sum(shared)
        means, counts = shared[:-k].view_as(self.embed), shared[-k:]
        self.embed.copy_(means)
        self.embed_avg.copy_(means)
        self.cluster_size.copy_(counts)
        self.inited.fill_(1.0)
        self._set_host_value("inited", 1)

    def _restart_picks(self, flat: torch.Tensor, expired: torch.Tensor) -> torch.Tensor:
        """[K, D]: for each expired code, the vector at its drawn global index if this rank's slice
        holds it, else zeros (the all-reduce adds the one holder's vector to zeros: exact)."""
        size, rank = flat.shape[0], self.reducer.rank
        generator = keyed_generator(flat.device, self.seed, self.layer, self._host_value("steps"), RESTART)
        picks = sample_indices(size * self.reducer.world_size, self.codebook_size, generator, flat.device)
        local = picks - rank * size
        mine = expired & (local >= 0) & (local < size)
        return torch.where(mine[:, None], flat[local.clamp(0, size - 1)], torch.zeros((), device=flat.device))

    @torch.no_grad()
    @torch.compiler.disable
    def _update(self, flat: torch.Tensor, codes: torch.Tensor) -> None:
        k, dim, size = self.codebook_size, flat.shape[1], flat.shape[0]
        onehot = F.one_hot(codes, k).to(flat.dtype)
        expired = self.cluster_size < self.threshold  # decided before the update, on identical buffers
        parts = [onehot.sum(0), (flat.t() @ onehot).t().reshape(-1)]
        if self.threshold > 0:
            parts.append(self._restart_picks(flat, expired).reshape(-1))
        parts.append(self._sizes(size, flat.device))
        total = torch.cat(parts)
        self.reducer.all_reduce_sum(total)  # the one collective of the step
        if self.reducer.world_size > 1 and size != self._verified_size:
            self._check_sizes(total[-self.reducer.world_size:], size)
        counts, sums = total[:k], total[k:k + k * dim].view(k, dim)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total_count = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.epsilon) / (total_count + k * self.epsilon) * total_count
        self.embed.copy_(self.embed_avg / smoothed.unsqueeze(1))
        if self.threshold > 0:
            restart = total[k + k * dim:k + 2 * k * dim].view(k, dim)
            threshold = float(self.threshold)
            self.embed.copy_(torch.where(expired[:, None], restart, self.embed))
            self.embed_avg.copy_(torch.where(expired[:, None], restart * threshold, self.embed_avg))
            self.cluster_size.copy_(torch.where(expired, threshold, self.cluster_size))
        step = self._host_value("steps")
        self.steps.add_(1)
        self._set_host_value("steps", step + 1)


class VectorQuantization(nn.Module):
    """One layer: ``forward(x [B, D, T]) -> (quantized [B, D, T], codes [B, T], commitment loss [])``."""

    def __init__(self, dim: int, codebook_size: int, decay: float, epsilon: float, kmeans_init: bool,
                 kmeans_iters: int, threshold_ema_dead_code: int, commitment_weight: float, seed: int,
                 layer: int) -> None:
        super().__init__()
        self.commitment_weight = commitment_weight
        self._codebook = EuclideanCodebook(dim, codebook_size, kmeans_init, kmeans_iters, decay, epsilon,
                                           threshold_ema_dead_code, seed, layer)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        batch, dim, frames = x.shape
        return self._codebook.encode(x.transpose(1, 2).reshape(-1, dim)).view(batch, frames)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self._codebook.decode(codes).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, dim, frames = x.shape
        latents = x.transpose(1, 2)
        quantized, codes = self._codebook(latents.reshape(-1, dim))
        quantized = quantized.view_as(latents)
        loss = torch.zeros((), device=x.device)
        if self.training:
            quantized = latents + (quantized - latents).detach()  # straight through
            if self.commitment_weight > 0:
                loss = F.mse_loss(quantized.detach().float(), latents.float()) * self.commitment_weight
        return quantized.transpose(1, 2), codes.view(batch, frames), loss


class EMAResidualVQ(nn.Module):
    """``n_q`` EMA codebooks, each quantizing what the ones before it left (see the module docstring)."""

    def __init__(self, dim: int, n_q: int, codebook_size: int, decay: float = 0.99, epsilon: float = 1e-5,
                 kmeans_init: bool = True, kmeans_iters: int = 50, threshold_ema_dead_code: int = 2,
                 commitment_weight: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        self.layers = nn.ModuleList([
            VectorQuantization(dim, codebook_size, decay, epsilon, kmeans_init, kmeans_iters,
                               threshold_ema_dead_code, commitment_weight, seed, layer=i)
            for i in range(n_q)])

    def _count(self, n_q: int | None) -> int:
        if n_q is None:
            return len(self.layers)
        if not 1 <= n_q <= len(self.layers):
            raise ValueError(f"n_q={n_q}: between 1 and the {len(self.layers)} codebooks")
        return n_q

    def forward(self, x: torch.Tensor, n_q: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` [B, D, T] -> (quantized [B, D, T], codes [B, n_q, T], mean commitment loss []);
        only the first ``n_q`` layers run (and, in training, update)."""
        residual, quantized_out = x, torch.zeros_like(x)
        codes, losses = [], []
        for layer in self.layers[:self._count(n_q)]:
            quantized, layer_codes, loss = layer(residual)
            residual = residual - quantized
            quantized_out = quantized_out + quantized
            codes.append(layer_codes)
            losses.append(loss)
        return quantized_out, torch.stack(codes, dim=1), torch.stack(losses).mean()

    def encode(self, x: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """``x`` [B, D, T] -> codes [B, n_q, T] (no update)."""
        residual, codes = x, []
        for layer in self.layers[:self._count(n_q)]:
            layer_codes = layer.encode(residual)
            residual = residual - layer.decode(layer_codes).to(residual.dtype)
            codes.append(layer_codes)
        return torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, K, T] (K <= n_q) -> latents [B, D, T], the sum of the first K codebooks' vectors."""
        if codes.dim() != 3 or not 1 <= codes.shape[1] <= len(self.layers):
            raise ValueError(f"codes of shape {tuple(codes.shape)}: expected [B, K, T] with K <= {len(self.layers)}")
        return sum(layer.decode(codes[:, i]) for i, layer in enumerate(self.layers[:codes.shape[1]]))
