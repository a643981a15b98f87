"""The training stream over real shards: exact split between ranks and workers, order, resume.

Runs real DataLoader worker processes (2 per rank), because the split depends on which worker
makes which batch.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch

from distgan.data.prepare import prepare_corpus
from distgan.data.prepare.options import PrepareOptions
from distgan.data.shards import ShardSet, iter_shard, resolve_shards
from distgan.data.stream import SKIP_REASONS, TrainLoader, TrainStream

SEGMENT = 1024
BATCH = 4
WORKERS = 2


@pytest.fixture(scope="module")
def train_shards(tmp_path_factory: pytest.TempPathFactory) -> ShardSet:
    """The synthetic corpus as ``distgan prepare`` writes it: 41 training clips in 7 shards."""
    options = PrepareOptions(sample_rate=8000, speakers=4, utterances=45, val_count=4, shard_max_samples=6,
                             progress=False)
    folder = tmp_path_factory.mktemp("corpus")
    prepare_corpus(None, folder, options)
    return resolve_shards(str(folder))


def make_stream(shards: ShardSet, rank: int, world_size: int = 2, **options: Any) -> TrainStream:
    settings: dict[str, Any] = dict(sample_rate=8000, segment_samples=SEGMENT, batch_size=BATCH, rank=rank,
                                    world_size=world_size, seed=7, shuffle_buffer=8, with_keys=True)
    return TrainStream(shards, **{**settings, **options})


def run_epochs(stream: TrainStream, epochs: int, num_workers: int = WORKERS) -> list[list[dict[str, Any]]]:
    loader = TrainLoader(stream, num_workers=num_workers, pin_memory=False)
    out = []
    for _ in range(epochs):
        out.append(list(loader.next_epoch()))
        assert all(b["epoch"] == loader.epoch for b in out[-1])
    return out


def keys_of(batches: list[dict[str, Any]]) -> list[str]:
    return [k for b in batches for k in b["keys"]]


def test_two_ranks_two_workers_split_each_epoch_exactly(train_shards: ShardSet) -> None:
    all_keys = sorted(sample.key for shard in train_shards.shards for sample in iter_shard(shard.url))
    assert len(all_keys) == 41 and len(train_shards.shards) == 7
    epochs = {rank: run_epochs(make_stream(train_shards, rank), epochs=2) for rank in range(2)}
    planned = make_stream(train_shards, 0).batches_per_epoch
    assert planned == 6  # 41 samples: 21 and 20 per rank, batches of up to 4
    assert [len(b["keys"]) for b in epochs[1][0]] == [4, 4, 4, 4, 3, 1]

    for epoch in range(2):
        per_stream = {
            (rank, worker): keys_of([b for b in epochs[rank][epoch] if b["index"] % WORKERS == worker])
            for rank, worker in itertools.product(range(2), range(WORKERS))
        }
        for a, b in itertools.combinations(per_stream.values(), 2):
            assert not set(a) & set(b)
        assert sorted(k for keys in per_stream.values() for k in keys) == all_keys
        for rank in range(2):
            batches = epochs[rank][epoch]
            assert [b["index"] for b in batches] == list(range(planned))
            assert all(b["audio"].shape == (len(b["keys"]), SEGMENT) for b in batches)
            assert all(b["audio"].dtype == torch.float32 for b in batches)
            assert sum(b["skips"].sum().item() for b in batches) == 0
            assert batches[0]["skips"].shape == (len(SKIP_REASONS) + 1,)

    assert keys_of(epochs[0][0]) != keys_of(epochs[0][1])
    again = run_epochs(make_stream(train_shards, 0), epochs=1)[0]
    assert keys_of(again) == keys_of(epochs[0][0])
    assert all(torch.equal(a["audio"], b["audio"]) for a, b in zip(again, epochs[0][0], strict=True))


def test_worker_count_changes_the_order_but_not_the_ranks_samples(train_shards: ShardSet) -> None:
    in_process = run_epochs(make_stream(train_shards, 1), epochs=1, num_workers=0)[0]
    with_workers = run_epochs(make_stream(train_shards, 1), epochs=1)[0]
    assert sorted(keys_of(in_process)) == sorted(keys_of(with_workers))
    assert keys_of(in_process) != keys_of(with_workers)
    assert [len(b["keys"]) for b in in_process] == [len(b["keys"]) for b in with_workers]


@pytest.mark.parametrize(("start_epoch", "skip_batches"), [(0, 3), (1, 2)])
def test_mid_epoch_resume_replays_the_same_batches(train_shards: ShardSet, start_epoch: int,
                                                    skip_batches: int) -> None:
    uninterrupted = run_epochs(make_stream(train_shards, 1, start_epoch=start_epoch), epochs=2)
    resumed = run_epochs(make_stream(train_shards, 1, start_epoch=start_epoch, skip_batches=skip_batches),
                         epochs=2)
    assert [b["index"] for b in resumed[0]] == list(range(skip_batches, 6))
    assert [b["epoch"] for b in resumed[1]] == [start_epoch + 1] * 6
    expected = uninterrupted[0][skip_batches:] + uninterrupted[1]
    for got, want in zip(resumed[0] + resumed[1], expected, strict=True):
        assert got["keys"] == want["keys"]
        assert torch.equal(got["audio"], want["audio"])


def test_abandoned_epoch_still_advances_every_worker(train_shards: ShardSet) -> None:
    loader = TrainLoader(make_stream(train_shards, 0), num_workers=WORKERS, pin_memory=False)
    first = next(loader.next_epoch())
    assert (first["epoch"], first["index"]) == (0, 0)
    assert [b["epoch"] for b in loader.next_epoch()] == [1] * loader.batches_per_epoch
    assert loader.epoch == 1


def test_checkpoint_at_the_end_of_an_epoch_resumes_with_the_next(train_shards: ShardSet) -> None:
    stream = make_stream(train_shards, 0, start_epoch=2, skip_batches=6)
    loader = TrainLoader(stream, num_workers=0, pin_memory=False)
    assert loader.epoch == 3
    assert [(b["epoch"], b["index"]) for b in loader.next_epoch()] == [(3, j) for j in range(6)]
