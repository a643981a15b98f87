"""Validation clips: whole utterances in sorted-key order, shared out by mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from distgan.data.shards import ShardSet, resolve_shards
from distgan.data.stream import iter_utterances
from tests.data.shard_helpers import sample, tone, write_corpus

# Shard order and key order disagree on purpose: the order must come from the keys.
VAL_SHARDS = [
    [sample(f"v_c{i}", tone(1000 + 10 * i, seed=i), text=f"clip c{i}") for i in range(3)],
    [sample(f"v_a{i}", tone(2000 + 10 * i, seed=10 + i)) for i in range(3)],
]
SORTED_KEYS = [f"v_a{i}" for i in range(3)] + [f"v_c{i}" for i in range(3)]


@pytest.fixture(scope="module")
def val_shards(tmp_path_factory: pytest.TempPathFactory) -> ShardSet:
    folder = tmp_path_factory.mktemp("corpus")
    write_corpus(folder, {"train": [[sample("t0", tone(3000, seed=99))]], "val": VAL_SHARDS})
    return resolve_shards(str(folder), split="val")


def keys(shards: ShardSet, rank: int, world_size: int, mode: str, **options: int) -> list[str]:
    return [c["key"] for c in iter_utterances(shards, sample_rate=8000, rank=rank, world_size=world_size,
                                              mode=mode, **options)]


def test_every_rank_gets_every_whole_clip_in_key_order(val_shards: ShardSet) -> None:
    clips = list(iter_utterances(val_shards, sample_rate=8000, rank=1, world_size=2))
    assert [c["key"] for c in clips] == SORTED_KEYS
    assert clips[3]["audio"].shape == (1000,) and clips[3]["audio"].dtype == torch.float32
    assert clips[3]["text"] == "clip c0" and clips[0]["text"] is None
    assert keys(val_shards, 0, 2, "all") == SORTED_KEYS


def test_split_mode_deals_clips_round_robin(val_shards: ShardSet) -> None:
    assert [keys(val_shards, r, 4, "split") for r in range(4)] == [
        [SORTED_KEYS[0], SORTED_KEYS[4]], [SORTED_KEYS[1], SORTED_KEYS[5]], [SORTED_KEYS[2]], [SORTED_KEYS[3]]
    ]
    assert keys(val_shards, 0, 2, "split", max_clips=3) == [SORTED_KEYS[0], SORTED_KEYS[2]]
    assert keys(val_shards, 0, 1, "all", max_clips=2) == SORTED_KEYS[:2]


def test_bad_clips_are_skipped_with_a_warning_naming_them(tmp_path: Path) -> None:
    write_corpus(tmp_path, {"val": [[sample("v_ok", tone(1500, seed=1)),
                                     sample("v_nan", np.full(1500, np.nan, np.float32), fmt="wav-float"),
                                     sample("v_rate", tone(1500, seed=2, sample_rate=16000), sample_rate=16000)]]})
    with pytest.warns(UserWarning) as caught:
        assert keys(resolve_shards(str(tmp_path), split="val"), 0, 1, "all") == ["v_ok"]
    messages = " ".join(str(w.message) for w in caught)
    assert "v_nan" in messages and "non_finite" in messages and "v_rate" in messages


def test_unknown_mode_is_an_error(val_shards: ShardSet) -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        keys(val_shards, 0, 1, "rank0")
