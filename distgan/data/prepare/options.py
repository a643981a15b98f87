"""What ``distgan prepare`` may be told: one dataclass shared by the CLI, the API and the synthetic corpus.

It lives apart from ``pipeline.py`` so that the synthetic corpus can build the same options
without importing the pipeline (which imports the synthetic corpus for ``--synthetic``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from distgan.config import SyntheticConfig
from distgan.data.format import WRITTEN_AUDIO_FORMATS

NormalizeMode = Literal["none", "peak", "loudness"]
AudioFormat = Literal["flac", "wav"]

NORMALIZE_MODES: tuple[str, ...] = ("none", "peak", "loudness")
# Validation clips when neither --val-count nor --val-fraction is given: the trainer logs
# ``log.val_clips = 4`` of them by default.
DEFAULT_VAL_COUNT = 4
# WebDataset's advice is shards of 100 MB to 1 GB; at the small end a corpus splits into enough
# shards to feed every rank's loader workers.
DEFAULT_SHARD_MAX_BYTES = 100_000_000


@dataclass(frozen=True)
class PrepareOptions:
    """Every choice that shapes a prepared corpus; all of them are recorded in ``index.json``.

    ``sample_rate=None`` keeps the sources' rate when they all agree. ``val_count`` and
    ``val_fraction`` are exclusive; with neither, ``DEFAULT_VAL_COUNT`` clips are held out.
    ``speakers`` and ``utterances`` only matter for the synthetic corpus.
    """

    sample_rate: int | None = None
    mono: bool = True
    normalize: NormalizeMode = "peak"
    peak_db: float = -1.0
    loudness_lufs: float = -23.0
    val_fraction: float | None = None
    val_count: int | None = None
    shard_max_bytes: int | None = DEFAULT_SHARD_MAX_BYTES
    shard_max_samples: int | None = None
    # PCM-16 WAV streams about 2x faster than FLAC (a crop is read without decoding the clip);
    # FLAC shards are ~40% smaller, for clusters where storage or network is the bottleneck.
    audio_format: AudioFormat = "wav"
    workers: int = 1
    seed: int = 0
    speakers: int = SyntheticConfig.speakers
    utterances: int = SyntheticConfig.utterances
    progress: bool = True

    def check(self) -> None:
        """Raise ``ValueError`` naming the first inconsistent option."""
        if self.sample_rate is not None and self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if self.normalize not in NORMALIZE_MODES:
            raise ValueError(f"normalize must be one of {NORMALIZE_MODES}, got {self.normalize!r}")
        if self.audio_format not in WRITTEN_AUDIO_FORMATS:
            raise ValueError(f"audio_format must be one of {WRITTEN_AUDIO_FORMATS}, got {self.audio_format!r}")
        if self.peak_db > 0:
            raise ValueError(f"peak_db is in dBFS and must be <= 0, got {self.peak_db}")
        if self.val_fraction is not None and self.val_count is not None:
            raise ValueError("give val_fraction or val_count, not both")
        if self.val_fraction is not None and not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in [0, 1), got {self.val_fraction}")
        if self.val_count is not None and self.val_count < 0:
            raise ValueError(f"val_count must be >= 0, got {self.val_count}")
        for name in ("shard_max_bytes", "shard_max_samples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None, got {value}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.speakers < 1 or self.utterances < 1:
            raise ValueError("the synthetic corpus needs at least one speaker and one utterance")

    def resolved(self, sample_rate: int) -> PrepareOptions:
        """The options as used: the actual sample rate, and the default validation count filled in."""
        val_count = self.val_count
        if val_count is None and self.val_fraction is None:
            val_count = DEFAULT_VAL_COUNT
        return dataclasses.replace(self, sample_rate=sample_rate, val_count=val_count)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
