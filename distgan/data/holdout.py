"""Holding out a fraction of a corpus's samples for validation, the same way on every process.

Shards written by other tools rarely come with a validation split. ``data.val_fraction`` makes
one: a sample is held out when the SHA-1 of its key, read as a number in [0, 1), is below the
fraction. The decision needs nothing but the key, so every rank, DataLoader worker and later run
makes it alike without talking to the others, and the training stream can drop the held-out
samples while it reads (``iter_shard(keep=...)``) instead of needing a list of them.

The key alone decides, not ``train.seed``: runs with different seeds validate on the same clips,
so their ``val/*`` curves compare; and a larger fraction holds out a superset of a smaller one's
samples. The held-out share is about ``fraction`` (a hash is not a quota): 1% of 100 000 samples
is 1000 +- 30.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

_SCALE = 2**64


def is_held_out(key: str, fraction: float) -> bool:
    """Whether ``key``'s sample belongs to the held-out ``fraction`` of a corpus."""
    if fraction <= 0.0:
        return False
    digest = hashlib.sha1(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") < fraction * _SCALE


@dataclass(frozen=True)
class Holdout:
    """Which side of the held-out split a ``ShardSet`` reads: training (``held_out=False``)
    takes the samples ``is_held_out`` rejects, validation (``held_out=True``) the others."""

    fraction: float
    held_out: bool

    def keeps(self, key: str) -> bool:
        return is_held_out(key, self.fraction) == self.held_out

    def describe(self) -> str:
        side = "held out for validation" if self.held_out else "kept for training"
        return f"the samples {side} by data.val_fraction={self.fraction:g}"
