"""The epoch plan: every sample once per epoch, equal batch counts per rank, clear size errors."""

from __future__ import annotations

import itertools

import pytest

from distgan.data.stream.plan import EpochPlan


def _positions(plan: EpochPlan, epoch: int, rank: int, worker: int, num_workers: int) -> list[tuple[int, int]]:
    pieces = plan.worker_plan(epoch, rank, worker, num_workers).pieces
    return [(p.shard, i) for p in pieces for i in range(p.start, p.stop)]


@pytest.mark.parametrize(("counts", "world_size", "batch_size", "num_workers"), [
    ([7, 5, 9, 3], 2, 4, 2), ([7, 5, 9, 3], 3, 2, 3), ([10], 4, 2, 1), ([4, 0, 6, 1, 8], 2, 3, 4),
])
def test_each_sample_goes_to_exactly_one_rank_and_worker(counts: list[int], world_size: int,
                                                          batch_size: int, num_workers: int) -> None:
    plan = EpochPlan(counts, world_size=world_size, batch_size=batch_size, seed=3)
    everything = sorted((s, i) for s, n in enumerate(counts) for i in range(n))
    for epoch in (0, 1):
        seen = [pos for r, w in itertools.product(range(world_size), range(num_workers))
                for pos in _positions(plan, epoch, r, w, num_workers)]
        assert sorted(seen) == everything
        for rank in range(world_size):
            sizes = plan.batch_sizes(rank)
            assert len(sizes) == plan.batches_per_epoch and all(1 <= s <= batch_size for s in sizes)
            start, stop = plan.rank_range(rank)
            assert sum(sizes) == stop - start
            workers = [plan.worker_plan(epoch, rank, w, num_workers) for w in range(num_workers)]
            assert sorted(j for wp in workers for j, _ in wp.batches) == list(range(len(sizes)))
            assert all(wp.samples == len(_positions(plan, epoch, rank, wp.worker, num_workers)) for wp in workers)


def test_smaller_rank_gets_smaller_last_batches() -> None:
    plan = EpochPlan([17], world_size=2, batch_size=4, seed=0)
    assert plan.batches_per_epoch == 3
    assert plan.batch_sizes(0) == [4, 4, 1] and plan.batch_sizes(1) == [4, 3, 1]


def test_epochs_order_shards_differently_and_reproducibly() -> None:
    plan = EpochPlan([1] * 12, world_size=1, batch_size=1, seed=5)
    orders = [plan.shard_order(e) for e in range(3)]
    assert len({tuple(o) for o in orders}) == 3
    assert EpochPlan([1] * 12, world_size=1, batch_size=1, seed=5).shard_order(1) == orders[1]
    assert EpochPlan([1] * 12, world_size=1, batch_size=1, seed=6).shard_order(1) != orders[1]


def test_too_small_a_corpus_for_the_world_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="corpus too small: 9 training samples over 4 ranks"):
        EpochPlan([5, 4], world_size=4, batch_size=1, seed=0)
    with pytest.raises(ValueError, match="corpus too small"):
        EpochPlan([0, 0], world_size=1, batch_size=4, seed=0)
