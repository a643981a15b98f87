"""How one epoch's samples are split between ranks, DataLoader workers and batches.

Pure arithmetic on the shards' sample counts, computed identically and independently by every
process, so no process needs to talk to another about data:

1. Epoch ``e`` orders the shards with a permutation seeded by ``(seed, e)``; their samples,
   concatenated in that order, are the epoch's global sequence of ``N`` samples.
2. Rank ``r`` of ``W`` takes a contiguous slice of it: ``N // W`` samples, one more for the first
   ``N % W`` ranks.
3. Every rank yields exactly ``K = ceil(ceil(N / W) / batch_size)`` batches. A rank with fewer
   samples makes its last batches smaller (``batch_sizes``), so every sample is used once and
   no rank waits in a collective for a batch another rank never makes (the classic DDP hang).
4. Rank-level batch ``j`` is made by DataLoader worker ``j % num_workers`` (the order in which
   torch's DataLoader asks its workers). The rank's slice is cut into contiguous worker ranges
   whose lengths are the sums of each worker's batch sizes.

A worker's stream is thus a pure function of (seed, epoch, rank, world_size, num_workers,
batch_size, counts). Resuming with another ``num_workers`` keeps the epoch's per-rank sample
set but changes the order within the epoch (and which crops are drawn).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_SEED_MOD = 2**63


def seeded_rng(*parts: int) -> np.random.Generator:
    """A generator determined by integers (negative ones allowed), independent of call order."""
    return np.random.default_rng(np.random.SeedSequence([int(p) % _SEED_MOD for p in parts]))


@dataclass(frozen=True)
class Piece:
    """Samples ``start <= i < stop`` (positions inside the tar) of shard number ``shard``."""

    shard: int
    start: int
    stop: int


@dataclass(frozen=True)
class WorkerPlan:
    """One worker's share of one epoch on one rank."""

    epoch: int
    rank: int
    worker: int
    num_workers: int
    batches: list[tuple[int, int]]  # (rank-level batch index, batch size), in index order
    pieces: list[Piece]  # the worker's samples, in epoch order
    borrow: list[Piece]  # the rest of the epoch sequence after the range, wrapping around once

    @property
    def samples(self) -> int:
        return sum(size for _, size in self.batches)


class EpochPlan:
    """Splits of every epoch for fixed shard counts, world size, batch size and seed."""

    def __init__(self, counts: list[int], *, world_size: int, batch_size: int, seed: int) -> None:
        if world_size < 1 or batch_size < 1:
            raise ValueError(f"world_size={world_size} and batch_size={batch_size} must be >= 1")
        self.counts = list(counts)
        self.world_size = world_size
        self.batch_size = batch_size
        self.seed = seed
        self.total = sum(self.counts)
        self.batches_per_epoch = math.ceil(math.ceil(self.total / world_size) / batch_size)
        smallest_rank = self.total // world_size
        if self.total == 0 or smallest_rank < self.batches_per_epoch:
            raise ValueError(
                f"corpus too small: {self.total} training samples over {world_size} ranks leaves "
                f"{smallest_rank} on some rank, fewer than the {self.batches_per_epoch} batches of "
                f"up to {batch_size} every rank must yield; use more data, fewer ranks or a smaller "
                "data.batch_size"
            )

    def shard_order(self, epoch: int) -> list[int]:
        return seeded_rng(self.seed, epoch).permutation(len(self.counts)).tolist()

    def rank_range(self, rank: int) -> tuple[int, int]:
        """``[start, stop)`` of rank ``rank`` in the epoch's global sequence."""
        if not 0 <= rank < self.world_size:
            raise ValueError(f"rank {rank} outside world size {self.world_size}")
        base, extra = divmod(self.total, self.world_size)
        start = rank * base + min(rank, extra)
        return start, start + base + (1 if rank < extra else 0)

    def batch_sizes(self, rank: int) -> list[int]:
        """``K`` sizes summing to the rank's sample count: full batches, then smaller ones.

        Each batch takes ``batch_size`` unless the remaining batches would then get nothing,
        e.g. 9 samples, ``K=3``, ``batch_size=4``: ``[4, 4, 1]``; 8 samples: ``[4, 3, 1]``.
        """
        start, stop = self.rank_range(rank)
        left, sizes = stop - start, []
        for j in range(self.batches_per_epoch):
            size = min(self.batch_size, left - (self.batches_per_epoch - 1 - j))
            sizes.append(size)
            left -= size
        return sizes

    def worker_plan(self, epoch: int, rank: int, worker: int, num_workers: int) -> WorkerPlan:
        sizes = self.batch_sizes(rank)
        rank_start, _ = self.rank_range(rank)
        per_worker = [sum(sizes[w::num_workers]) for w in range(num_workers)]
        start = rank_start + sum(per_worker[:worker])
        stop = start + per_worker[worker]
        order = self.shard_order(epoch)
        batches = [(j, sizes[j]) for j in range(worker, len(sizes), num_workers)]
        return WorkerPlan(
            epoch, rank, worker, num_workers, batches,
            pieces=self.pieces(order, start, stop),
            borrow=self.pieces(order, stop, stop + self.total),
        )

    def pieces(self, order: list[int], start: int, stop: int) -> list[Piece]:
        """The shard pieces covering global positions ``[start, stop)`` (wrapping modulo ``N``)."""
        out: list[Piece] = []
        position = 0
        for _ in range(stop // self.total + 1):
            for shard in order:
                count = self.counts[shard]
                lo, hi = max(start, position), min(stop, position + count)
                if lo < hi:
                    out.append(Piece(shard, lo - position, hi - position))
                position += count
                if position >= stop:
                    return out
        return out
