"""Bad input is skipped and counted, the good samples still arrive, and no rank loses a batch.

Each case writes four good shards plus one shard holding the bad thing, streams an epoch on two
ranks, and checks the count under the expected reason, the delivered keys and the batch plan.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from distgan.data.index import CorpusIndex
from distgan.data.shards import ShardSet, resolve_shards
from distgan.data.stream import TrainLoader, TrainStream
from distgan.data.stream.skips import sum_skips
from tests.data.shard_helpers import good_shards, sample, tone, truncate, write_corpus

SEGMENT = 1024
GOOD = good_shards(4, 5, samples=1500)
GOOD_KEYS = {k["__key__"].decode() for shard in GOOD for k in shard}


def _bad_sample(kind: str) -> dict[str, bytes]:
    audio = tone(2000, seed=999)
    return {
        "no_audio": lambda: sample("bad", None),
        "decode_error": lambda: sample("bad", None, audio_bytes=b"this is not audio" * 50),
        "wrong_sample_rate": lambda: sample("bad", tone(4000, seed=9, sample_rate=16000), sample_rate=16000),
        "empty": lambda: sample("bad", np.zeros(0, np.float32), fmt="wav"),
        "silent": lambda: sample("bad", np.zeros(3000, np.float32)),
        "silent_without_peak": lambda: sample("bad", np.full(3000, 1e-6, np.float32), fmt="wav-float", peak=None),
        "non_finite": lambda: sample("bad", np.where(np.arange(2000) % 2, np.nan, audio).astype(np.float32),
                                     fmt="wav-float", peak=0.3),
        "non_finite_without_peak": lambda: sample("bad", np.full(2000, np.inf, np.float32), fmt="wav-float",
                                                  peak=None),
        "too_short": lambda: sample("bad", tone(SEGMENT - 1, seed=9)),
        "metadata_mismatch": lambda: with_meta(sample("bad", audio), samples=4000),  # json: 4000, wav: 2000
    }[kind]()


def with_meta(members: dict[str, bytes], **fields: Any) -> dict[str, bytes]:
    meta = json.loads(members["json"])
    meta.update(fields)
    return {**members, "json": json.dumps(meta).encode()}


def stream_epoch(shards: ShardSet, *, world_size: int = 2, num_workers: int = 0,
                 **options: Any) -> tuple[list[list[dict[str, Any]]], TrainStream]:
    """One epoch per rank; returns each rank's batches."""
    per_rank = []
    for rank in range(world_size):
        stream = TrainStream(shards, sample_rate=8000, segment_samples=SEGMENT, batch_size=4, rank=rank,
                             world_size=world_size, seed=1, shuffle_buffer=4, with_keys=True, **options)
        per_rank.append(list(TrainLoader(stream, num_workers=num_workers, pin_memory=False).next_epoch()))
    return per_rank, stream


def check_epoch(per_rank: list[list[dict[str, Any]]], stream: TrainStream, expected_keys: set[str]) -> dict[str, int]:
    """Planned batch sizes on every rank; returns the summed skip counts."""
    for rank, batches in enumerate(per_rank):
        assert [b["audio"].shape[0] for b in batches] == stream.plan.batch_sizes(rank)
        assert all(np.isfinite(b["audio"].numpy()).all() for b in batches)
    keys = [k for batches in per_rank for b in batches for k in b["keys"]]
    assert {k for k in keys if not k.startswith("refill:")} == expected_keys
    counts = sum_skips(b for batches in per_rank for b in batches)
    assert counts["refilled"] == sum(k.startswith("refill:") for k in keys)
    return counts


def corpus_with(tmp_path: Path, bad_shard: list[dict[str, bytes]]) -> ShardSet:
    return resolve_shards(str(write_corpus(tmp_path, {"train": [*GOOD, bad_shard]})))


@pytest.mark.parametrize("kind", [
    "no_audio", "decode_error", "wrong_sample_rate", "empty", "silent", "silent_without_peak",
    "non_finite", "non_finite_without_peak", "too_short", "metadata_mismatch",
])
def test_bad_sample_is_counted_under_its_reason(tmp_path: Path, kind: str) -> None:
    good_in_bad_shard = [sample(f"x{i}", tone(1800, seed=500 + i)) for i in range(3)]
    shards = corpus_with(tmp_path, [*good_in_bad_shard[:2], _bad_sample(kind), good_in_bad_shard[2]])
    counts = check_epoch(*stream_epoch(shards), GOOD_KEYS | {"x0", "x1", "x2"})
    reason = kind.removesuffix("_without_peak")
    assert counts[reason] == 1
    assert sum(counts.values()) - counts["refilled"] == 1
    assert counts["refilled"] == 1


def test_short_clips_are_padded_when_asked(tmp_path: Path) -> None:
    shards = corpus_with(tmp_path, [_bad_sample("too_short")])
    per_rank, stream = stream_epoch(shards, short_clips="pad")
    counts = check_epoch(per_rank, stream, GOOD_KEYS | {"bad"})
    assert counts["too_short"] == 0 and counts["refilled"] == 0
    padded = next(b["audio"][b["keys"].index("bad")] for bs in per_rank for b in bs if "bad" in b["keys"])
    assert padded[SEGMENT - 1] == 0 and padded[:100].abs().max() > 0


@pytest.mark.parametrize("damage", [
    ("truncated", lambda p: truncate(p, 0.5)),
    ("garbage", lambda p: p.write_bytes(np.random.default_rng(0).bytes(40_000))),
    ("vanished", lambda p: p.unlink()),
], ids=lambda damage: damage[0])
def test_broken_shard_is_counted_once_and_its_slots_refilled(
        tmp_path: Path, damage: tuple[str, Callable[[Path], Any]]) -> None:
    bad_keys = {f"b{i}" for i in range(6)}
    shards = corpus_with(tmp_path, [sample(k, tone(3000, seed=700 + i)) for i, k in enumerate(sorted(bad_keys))])
    damage[1](tmp_path / "train-000004.tar")
    per_rank, stream = stream_epoch(shards)
    arrived = {k for bs in per_rank for b in bs for k in b["keys"]} & bad_keys
    counts = check_epoch(per_rank, stream, GOOD_KEYS | arrived)
    assert counts["shard_error"] == 1
    assert counts["refilled"] == 6 - len(arrived)
    if damage[0] == "truncated":
        assert 0 < len(arrived) < 6


@pytest.mark.parametrize("recorded", [7, 3], ids=["index-over-counts", "index-under-counts"])
def test_an_index_that_miscounts_a_shard_is_counted_and_named(tmp_path: Path, recorded: int,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    keys = [f"m{i}" for i in range(5)]
    folder = write_corpus(tmp_path, {"train": [*GOOD, [sample(k, tone(2000, seed=800 + i)) for i, k in enumerate(keys)]]})
    index = CorpusIndex.read(folder)
    index.splits["train"].shards[-1].samples = recorded
    index.write(folder)
    per_rank, stream = stream_epoch(resolve_shards(str(folder)), world_size=1)
    counts = check_epoch(per_rank, stream, GOOD_KEYS | set(keys[:recorded]))
    assert counts["index_mismatch"] == 1
    if recorded > len(keys):  # the index promised samples that are not there: re-crops fill in
        assert counts["refilled"] == recorded - len(keys)
        assert "train-000004.tar holds fewer samples than its index records (5 of 7 read)" in caplog.text
    else:  # samples the index does not know of are never read, and that is said
        assert "train-000004.tar holds more than the 3 samples its index records" in caplog.text


def test_worker_whose_whole_range_is_bad_borrows_and_keeps_its_batches(tmp_path: Path) -> None:
    # 1 rank, 2 workers, 4 batches of 4: one worker's 8 samples are exactly the garbage shard.
    good = [[sample(f"g{i}", tone(2000, seed=i)) for i in range(8)]]
    folder = write_corpus(tmp_path, {"train": [*good, [sample(f"b{i}", tone(2000, seed=50 + i)) for i in range(8)]]})
    (folder / "train-000001.tar").write_bytes(b"\0garbage" * 2000)
    per_rank, stream = stream_epoch(resolve_shards(str(folder)), world_size=1, num_workers=2)
    counts = check_epoch(per_rank, stream, {f"g{i}" for i in range(8)})
    assert counts["shard_error"] == 1 and counts["refilled"] == 8


def test_a_corpus_without_any_usable_audio_is_an_error(tmp_path: Path) -> None:
    shards = resolve_shards(str(write_corpus(tmp_path, {"train": [[sample(f"s{i}", None) for i in range(8)]]})))
    with pytest.raises(RuntimeError, match="no usable audio"):
        stream_epoch(shards, world_size=1)


def test_unreadable_shard_without_an_index_counts_as_empty(tmp_path: Path) -> None:
    write_corpus(tmp_path, {"train": GOOD}, index=False)
    (tmp_path / "train-000004.tar").write_bytes(b"garbage" * 300)
    with pytest.warns(UserWarning, match="train-000004.tar.*contributes no samples"):
        per_rank, stream = stream_epoch(resolve_shards(str(tmp_path)))
    counts = check_epoch(per_rank, stream, GOOD_KEYS)
    assert counts["refilled"] == 0
