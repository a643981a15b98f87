"""One DataLoader worker's pipeline for one epoch: read its range, shuffle, decode, batch, refill.

Stages, all seeded by (seed, epoch, rank, worker) so that a replay is bit-identical:

1. read the raw (undecoded) samples of the worker's pieces, in epoch order; a shard that fails
   is counted once as ``shard_error`` and its remaining samples are simply missing;
2. a shuffle buffer over the raw samples (cheap: bytes, not decoded audio);
3. decode a random crop of each; a bad sample is counted under its reason and dropped;
4. cut the crops into the worker's planned batches (sizes fixed upfront by ``EpochPlan``).

Keeping the planned batch count is what keeps DDP and DeepSpeed from hanging, so a worker
whose range runs short of good samples fills its remaining slots by re-cropping one of its
last good clips (counted as ``refilled``). A worker without a single good clip borrows one from
the shards that follow its range in the epoch sequence (wrapping around); only a corpus with
no usable clip at all is an error.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
from torch.utils.data import default_collate

from distgan.data.reading import RawSample, ShardReadError
from distgan.data.shards import Shard
from distgan.data.stream.decode import decode_segment, find_audio, read_meta
from distgan.data.stream.plan import Piece, WorkerPlan, seeded_rng
from distgan.data.stream.skips import REFILLED, BadSample, NoUsableAudio, SkipCounter

log = logging.getLogger(__name__)
T = TypeVar("T")

# Recent good clips kept (as bytes) for refills: a few, so refills are not all one clip.
RESERVOIR_CLIPS = 8
REFILL_PREFIX = "refill:"


@dataclass(frozen=True)
class SegmentSettings:
    """How a clip becomes a segment; identical on every rank and worker."""

    sample_rate: int
    segment_samples: int
    pad_short: bool
    silence_peak: float
    shuffle_buffer: int
    seed: int
    with_keys: bool = False


def read_pieces(pieces: Iterable[Piece], shards: list[Shard], counter: SkipCounter) -> Iterator[RawSample]:
    """Raw samples of ``pieces`` in order; shard failures are counted, logged and skipped.

    A shard that holds fewer samples than its recorded count, or more (found when a piece
    ends at that count), is counted once per piece as ``index_mismatch`` and logged.
    """
    for piece in pieces:
        shard = shards[piece.shard]
        received = 0
        ends_shard = shard.samples is not None and piece.stop == shard.samples

        def more_than_recorded(shard: Shard = shard) -> None:
            counter.add("index_mismatch")
            _warn_once(f"{shard.url} holds more than the {shard.samples} samples its index records: "
                       "the rest are never read; rewrite the index (distgan prepare, or distgan index)")

        try:
            for sample in shard.read(piece.start, piece.stop, beyond=more_than_recorded if ends_shard else None):
                received += 1
                yield sample
        except ShardReadError as err:
            counter.add("shard_error")
            log.warning("skipping the rest of a shard: %s", err)
            continue
        if received < piece.stop - piece.start:
            counter.add("index_mismatch")
            _warn_once(f"{shard.url} holds fewer samples than its index records ({piece.start + received} "
                       f"of {piece.stop} read); the missing ones are made up by re-crops")


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """Log a message once per process (every epoch would otherwise repeat it)."""
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning(message)


def shuffled(items: Iterable[T], buffer_size: int, rng: np.random.Generator) -> Iterator[T]:
    """Yield ``items`` in a random order, holding at most ``buffer_size`` of them at a time."""
    buffer: list[T] = []
    for item in items:
        if len(buffer) < max(buffer_size, 1):
            buffer.append(item)
            continue
        slot = int(rng.integers(len(buffer)))
        yield buffer[slot]
        buffer[slot] = item
    while buffer:
        slot = int(rng.integers(len(buffer)))
        buffer[slot], buffer[-1] = buffer[-1], buffer[slot]
        yield buffer.pop()


class _Cropper:
    """Decodes crops with the worker's crop generator and remembers recent good clips."""

    def __init__(self, settings: SegmentSettings, rng: np.random.Generator) -> None:
        self.settings = settings
        self.rng = rng
        self.reservoir: deque[tuple[str, bytes, dict[str, Any]]] = deque(maxlen=RESERVOIR_CLIPS)

    def crop(self, audio: bytes, meta: dict[str, Any]) -> np.ndarray:
        s = self.settings
        return decode_segment(audio, meta, sample_rate=s.sample_rate, segment_samples=s.segment_samples,
                              pad_short=s.pad_short, silence_peak=s.silence_peak, rng=self.rng)

    def crop_new(self, sample: RawSample) -> np.ndarray:
        audio, meta = find_audio(sample.members), read_meta(sample.members)
        segment = self.crop(audio, meta)
        self.reservoir.append((sample.key, audio, meta))
        return segment

    def crop_again(self) -> tuple[str, np.ndarray] | None:
        """A fresh crop of a random recent clip; ``None`` when no good clip is left."""
        while self.reservoir:
            clip = self.reservoir[int(self.rng.integers(len(self.reservoir)))]
            key, audio, meta = clip
            try:
                return key, self.crop(audio, meta)
            except BadSample:  # a crop elsewhere in the clip hit NaN/Inf: stop using the clip
                self.reservoir.remove(clip)
        return None


def worker_batches(plan: WorkerPlan, shards: list[Shard], settings: SegmentSettings,
                   *, skip_batches: int = 0) -> Iterator[dict[str, Any]]:
    """This worker's batches of ``plan``, dropping those with index ``< skip_batches`` (resume).

    Dropped batches are still read and decoded, so that the random generators are in exactly
    the state an uninterrupted run would have; their skip counts are discarded with them (the
    run before the checkpoint has logged them).
    """
    counter = SkipCounter()
    cropper = _Cropper(settings, seeded_rng(settings.seed, plan.epoch, plan.rank, plan.worker, 1))
    shuffle_rng = seeded_rng(settings.seed, plan.epoch, plan.rank, plan.worker, 0)
    planned = list(plan.batches)
    segments: list[np.ndarray] = []
    keys: list[str] = []

    def finish_batch() -> dict[str, Any] | None:
        index, _ = planned.pop(0)
        if index < skip_batches:
            counter.take()
            segments.clear()
            keys.clear()
            return None
        # default_collate stacks straight into shared memory inside a DataLoader worker, which
        # saves the copy torch would otherwise make to send the batch to the main process.
        audio = default_collate([torch.from_numpy(segment) for segment in segments])
        batch = {"audio": audio, "epoch": plan.epoch, "index": index, "skips": counter.take()}
        if settings.with_keys:
            batch["keys"] = list(keys)
        segments.clear()
        keys.clear()
        return batch

    raw = shuffled(read_pieces(plan.pieces, shards, counter), settings.shuffle_buffer, shuffle_rng)
    for sample in raw:
        if not planned:
            break
        try:
            segments.append(cropper.crop_new(sample))
        except BadSample as bad:
            counter.add(bad.reason)
            continue
        keys.append(sample.key)
        if len(segments) == planned[0][1] and (batch := finish_batch()) is not None:
            yield batch

    while planned:
        refill = cropper.crop_again()
        if refill is None:
            _borrow(plan, shards, cropper)
            continue
        counter.add(REFILLED)
        segments.append(refill[1])
        keys.append(REFILL_PREFIX + refill[0])
        if len(segments) == planned[0][1] and (batch := finish_batch()) is not None:
            yield batch


def _borrow(plan: WorkerPlan, shards: list[Shard], cropper: _Cropper) -> None:
    """Find one good clip after the worker's range (skips there belong to other workers' counts)."""
    elsewhere = SkipCounter()
    for sample in read_pieces(plan.borrow, shards, elsewhere):
        try:
            cropper.crop_new(sample)
        except BadSample as bad:
            elsewhere.add(bad.reason)
            continue
        log.warning("rank %d worker %d: no good sample in its range of epoch %d; borrowed %s",
                    plan.rank, plan.worker, plan.epoch, sample.key)
        return
    raise NoUsableAudio(f"no usable audio in any shard: every clip was dropped ({elsewhere.as_dict(nonzero=True)}); "
                        "the reasons are data_skips' (distgan/data/stream/skips.py): fix the corpus or the "
                        "data settings they point at")
