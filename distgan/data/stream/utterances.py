"""Whole utterances in one fixed order: the trainer's validation clips and ``distgan evaluate``'s.

The order is the sorted sample keys over all the shards, so the clip logged as ``val/0`` is the
same utterance in every run and on every rank. ``mode`` says who gets what:

- ``"all"``: every rank gets every clip (training validation: under ZeRO-3 the generator's
  forward is a collective, so every rank must run it on the same clips);
- ``"split"``: clip ``i`` goes to rank ``i % world_size`` (evaluation over many clips, to be
  gathered afterwards).

With ``max_clips`` (training validation) only the chosen samples are read: the keys come from
the index or the tar headers, so validating on a few clips of a large corpus (its held-out
fraction, or its training shards when it has no validation split) reads a few clips, not the
corpus; ``pipe:`` shards stream through once, keeping only the ``max_clips`` smallest keys.
Without it (``distgan evaluate``) every sample is read into memory as bytes before sorting.
Only the clips a rank keeps are decoded; a bad clip is skipped with a warning naming it.
"""

from __future__ import annotations

import heapq
import itertools
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch

from distgan.data.format import SILENCE_PEAK
from distgan.data.reading import RawSample, ShardReadError, iter_shard, shard_keys
from distgan.data.shards import Shard, ShardSet
from distgan.data.stream.decode import decode_clip, find_audio, read_meta, read_text
from distgan.data.stream.skips import BadSample

MODES = ("all", "split")


def iter_utterances(
    shards: ShardSet,
    *,
    sample_rate: int,
    rank: int,
    world_size: int,
    mode: str = "all",
    max_clips: int | None = None,
    silence_peak: float = SILENCE_PEAK,
) -> Iterator[dict[str, Any]]:
    """Yield ``{"key": str, "audio": FloatTensor [T], "text": str | None}`` for this rank.

    ``max_clips`` keeps the first clips of the sorted order before they are shared out, so
    every rank agrees on the set; bad clips among them are skipped, not replaced.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world size {world_size}")
    samples = sorted_samples(shards, max_clips)
    if mode == "split":
        samples = samples[rank::world_size]
    yield from decode_utterances(samples, sample_rate=sample_rate, silence_peak=silence_peak)


def sorted_samples(shards: ShardSet, max_clips: int | None = None) -> list[RawSample]:
    """The set's samples (the first ``max_clips`` of them) in key order, undecoded."""
    return _read_all(shards) if max_clips is None else _read_first(shards, max_clips)


def decode_utterances(samples: list[RawSample], *, sample_rate: int,
                      silence_peak: float = SILENCE_PEAK) -> Iterator[dict[str, Any]]:
    """Decode whole clips (``iter_utterances``' dicts), skipping bad ones with a warning naming them."""
    for sample in samples:
        try:
            meta = read_meta(sample.members)
            clip = decode_clip(find_audio(sample.members), meta, sample_rate=sample_rate, silence_peak=silence_peak)
        except BadSample as bad:
            warnings.warn(f"clip {sample.key} skipped ({bad})", stacklevel=2)
            continue
        yield {"key": sample.key, "audio": torch.from_numpy(clip), "text": read_text(sample.members, meta)}


def _read_all(shards: ShardSet) -> list[RawSample]:
    """Every sample of the set, sorted by key (ties: shard order)."""
    samples = [sample for shard in shards.shards for sample in _read_shard(shard)]
    samples.sort(key=lambda sample: sample.key)
    return samples


def _read_first(shards: ShardSet, max_clips: int) -> list[RawSample]:
    """The ``max_clips`` samples with the smallest keys, reading no other sample's bytes."""
    local = [(i, shard) for i, shard in enumerate(shards.shards) if not shard.is_pipe]
    piped = [(i, shard) for i, shard in enumerate(shards.shards) if shard.is_pipe]
    chosen = heapq.nsmallest(max_clips, ((key, i) for i, shard in local for key in _kept_keys(shard)))
    found: list[tuple[str, int, RawSample]] = []
    for i, shard in local:
        wanted = {key for key, j in chosen if j == i}
        if wanted:
            found += [(s.key, i, s) for s in _read_shard(shard, wanted.__contains__)]
    streamed = ((s.key, i, s) for i, shard in piped for s in _read_shard(shard))
    best = heapq.nsmallest(max_clips, itertools.chain(found, streamed), key=lambda item: item[:2])
    return [sample for _, _, sample in best]


def _kept_keys(shard: Shard) -> list[str]:
    """The set's keys in a local shard: from the index or the headers (no member data)."""
    try:
        keys = shard.keys if shard.keys is not None else shard_keys(shard.url)
    except ShardReadError as err:
        warnings.warn(f"a shard skipped: {err}", stacklevel=4)
        return []
    return [key for key in keys if shard.keeps(key)]


def _read_shard(shard: Shard, wanted: Callable[[str], bool] | None = None) -> Iterator[RawSample]:
    """The set's samples of one shard (only the ``wanted`` keys); a failure ends it with a warning."""
    keep = shard.keeps if wanted is None else (lambda key: wanted(key) and shard.keeps(key))
    try:
        yield from iter_shard(shard.url, keep=keep)
    except ShardReadError as err:
        warnings.warn(f"the rest of a shard skipped: {err}", stacklevel=4)
