"""Whole utterances in one fixed order: the trainer's validation clips and ``distgan evaluate``'s.

The order is the sorted sample keys over all the shards, so the clip logged as ``val/0`` is the
same utterance in every run and on every rank. ``mode`` says who gets what:

- ``"all"``: every rank gets every clip (training validation: under ZeRO-3 the generator's
  forward is a collective, so every rank must run it on the same clips);
- ``"split"``: clip ``i`` goes to rank ``i % world_size`` (evaluation over many clips, to be
  gathered afterwards).

Validation sets are small: all their shards are read into memory as bytes before sorting, and
only the clips a rank keeps are decoded. A bad clip is skipped with a warning naming it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import torch

from distgan.data.format import SILENCE_PEAK
from distgan.data.shards import RawSample, ShardReadError, ShardSet, iter_shard
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
    samples = _read_all(shards)
    samples.sort(key=lambda sample: sample.key)
    if max_clips is not None:
        samples = samples[:max_clips]
    if mode == "split":
        samples = samples[rank::world_size]
    for sample in samples:
        try:
            meta = read_meta(sample.members)
            clip = decode_clip(find_audio(sample.members), meta, sample_rate=sample_rate, silence_peak=silence_peak)
        except BadSample as bad:
            warnings.warn(f"clip {sample.key} skipped ({bad})", stacklevel=2)
            continue
        yield {"key": sample.key, "audio": torch.from_numpy(clip), "text": read_text(sample.members, meta)}


def _read_all(shards: ShardSet) -> list[RawSample]:
    samples = []
    for shard in shards.shards:
        try:
            for sample in iter_shard(shard.url):
                samples.append(sample)
        except ShardReadError as err:
            warnings.warn(f"the rest of a shard skipped: {err}", stacklevel=3)
    return samples
