"""Why a training sample was dropped, and how the drops are counted and logged.

Bad input never stops a run: each dropped sample is counted under one reason, and every batch
carries the counts gathered since its worker's previous batch, as a ``LongTensor`` of
``len(SKIP_REASONS) + 1`` slots (the last one counts ``refilled`` segments). The trainer sums
these tensors (all-reduced over ranks) and logs running totals as ``data_skips/REASON``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

SKIP_REASONS: tuple[str, ...] = (
    "shard_error",  # the tar is unreadable or truncated, or vanished while streaming
    "no_audio",  # a sample without an audio member (format.AUDIO_EXTENSIONS)
    "decode_error",  # the audio member is not audio soundfile can read
    "wrong_sample_rate",  # the file's rate differs from audio.sample_rate (no silent resampling)
    "empty",  # zero frames
    "silent",  # peak below the silence threshold
    "non_finite",  # NaN or Inf in the decoded samples (float files)
    "too_short",  # fewer frames than a segment, with data.short_clips=skip
    "metadata_mismatch",  # the sample's json disagrees with its audio (rate, length, channels)
    "index_mismatch",  # a shard holds more or fewer samples than index.json says (counted per shard)
)
# Not a skip: a planned batch slot filled by re-cropping a recent good clip, because the
# worker's share of the epoch ran short of good samples (see ``worker.py``).
REFILLED = "refilled"
COUNTER_NAMES: tuple[str, ...] = (*SKIP_REASONS, REFILLED)


class BadSample(Exception):
    """A sample that cannot become a training segment; ``reason`` is one of ``SKIP_REASONS``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in SKIP_REASONS:
            raise ValueError(f"unknown skip reason {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class NoUsableAudio(RuntimeError):
    """No clip of the corpus can become a training segment; the message is one line, the cause
    and the fix (``probe.py`` tells before training where it can, the stream otherwise)."""


class SkipCounter:
    """Counts per reason; ``take()`` hands the counts to a batch and starts again from zero.

    Used on both sides: a worker ``add``s as it drops samples and ``take``s a tensor for each
    batch; the trainer ``update``s with each batch's tensor and logs ``as_dict()``.
    """

    def __init__(self) -> None:
        self.counts = torch.zeros(len(COUNTER_NAMES), dtype=torch.long)

    def add(self, reason: str, count: int = 1) -> None:
        self.counts[COUNTER_NAMES.index(reason)] += count

    def update(self, skips: torch.Tensor) -> None:
        """Add a batch's ``skips`` tensor (shape ``[len(SKIP_REASONS) + 1]``)."""
        if skips.shape != self.counts.shape:
            raise ValueError(f"skips tensor has shape {tuple(skips.shape)}, expected {tuple(self.counts.shape)}")
        self.counts += skips.to(device="cpu", dtype=torch.long)

    def take(self) -> torch.Tensor:
        counts, self.counts = self.counts, torch.zeros_like(self.counts)
        return counts

    def total(self) -> int:
        """Skipped samples (refills are not skips and are not included)."""
        return int(self.counts[: len(SKIP_REASONS)].sum())

    def as_dict(self, *, nonzero: bool = False) -> dict[str, int]:
        return skips_to_dict(self.counts, nonzero=nonzero)


def skips_to_dict(skips: torch.Tensor, *, nonzero: bool = False) -> dict[str, int]:
    """``{reason: count}`` for a ``skips`` tensor, in ``COUNTER_NAMES`` order."""
    values = [int(v) for v in skips.tolist()]
    return {name: v for name, v in zip(COUNTER_NAMES, values, strict=True) if v or not nonzero}


def sum_skips(batches: Iterable[Mapping[str, torch.Tensor]]) -> dict[str, int]:
    """Total the ``skips`` of some batches (a test or bench convenience)."""
    counter = SkipCounter()
    for batch in batches:
        counter.update(batch["skips"])
    return counter.as_dict()
