"""``index.json``: what a corpus folder holds, written by ``distgan prepare``, read by the stream.

A corpus folder holds ``{split}-{NNNNNN}.tar`` shards and one ``index.json`` (the names are in
``format.py``). Each sample in a shard is a group of tar members sharing a key:

- ``KEY.flac`` or ``KEY.wav`` (PCM-16, or float for foreign shards): mono audio;
- ``KEY.json``: ``{"key", "sample_rate", "samples", "duration", "channels", "speaker",
  "source", "peak"}`` plus ``"text"`` when the corpus has text;
- ``KEY.txt``: the text, UTF-8, when there is one.

Keys hold only ``[A-Za-z0-9_-]`` (no dots: WebDataset splits a member name at the first dot).
``index.json`` lists every split's shards with their sample counts and seconds, relative to the
index's folder, plus the sample rate and the options used, so that a training run can check its
config against the data and split samples exactly between ranks without reading the shards.

``distgan index`` writes the same file for shards other tools wrote (``data/indexing.py``); it
also records each shard's sample ``keys`` (so ``data.val_fraction``'s held-out split is known
without opening a shard), and ``null`` for what it was told not to measure (the seconds and the
sample rate with ``--no-durations``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distgan.data.format import INDEX_NAME

FORMAT_VERSION = 1


@dataclass
class ShardEntry:
    path: str
    samples: int
    seconds: float | None
    keys: list[str] | None = None


@dataclass
class SplitEntry:
    shards: list[ShardEntry] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return sum(s.samples for s in self.shards)

    @property
    def seconds(self) -> float | None:
        if any(s.seconds is None for s in self.shards):
            return None
        return sum(s.seconds or 0.0 for s in self.shards)


@dataclass
class CorpusIndex:
    sample_rate: int | None
    audio_format: str
    splits: dict[str, SplitEntry] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    failed: list[dict[str, str]] = field(default_factory=list)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "sample_rate": self.sample_rate,
            "audio_format": self.audio_format,
            "splits": {
                name: {
                    "samples": split.samples,
                    "seconds": None if split.seconds is None else round(split.seconds, 3),
                    "shards": [_shard_json(s) for s in split.shards],
                }
                for name, split in self.splits.items()
            },
            "source": self.source,
            "options": self.options,
            "failed": self.failed,
        }

    def write(self, folder: str | Path) -> Path:
        """Write ``folder/index.json`` atomically (a reader never sees half a file)."""
        return self.write_file(Path(folder) / INDEX_NAME)

    def write_file(self, path: str | Path) -> Path:
        """Write the index to ``path`` (any ``.json`` name) atomically."""
        path = Path(path)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls, path: str | Path) -> CorpusIndex:
        path = Path(path)
        if path.is_dir():
            path = path / INDEX_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no corpus index at {path}")
        try:
            raw = json.loads(path.read_text())
            splits = {
                name: SplitEntry([_shard_entry(s) for s in split["shards"]])
                for name, split in raw["splits"].items()
            }
            return cls(
                sample_rate=_optional(int, raw["sample_rate"]),
                audio_format=str(raw["audio_format"]),
                splits=splits,
                options=dict(raw.get("options", {})),
                source=str(raw.get("source", "")),
                failed=list(raw.get("failed", [])),
                format_version=int(raw.get("format_version", FORMAT_VERSION)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: not a valid distgan index ({type(err).__name__}: {err})") from err


def _optional(kind: type, value: Any) -> Any:
    return None if value is None else kind(value)


def _shard_entry(raw: dict[str, Any]) -> ShardEntry:
    keys = raw.get("keys")
    if keys is not None and (not isinstance(keys, list) or len(keys) != int(raw["samples"])):
        raise ValueError(f"shard {raw['path']}: 'keys' must list its {raw['samples']} sample keys")
    return ShardEntry(str(raw["path"]), int(raw["samples"]), _optional(float, raw["seconds"]),
                      None if keys is None else [str(key) for key in keys])


def _shard_json(entry: ShardEntry) -> dict[str, Any]:
    """A shard's entry; ``keys`` only when recorded (``distgan prepare``'s indexes have none)."""
    raw = dataclasses.asdict(entry)
    if entry.keys is None:
        del raw["keys"]
    return raw
