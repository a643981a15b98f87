"""Writing small real shards in the documented format (``distgan/data/index.py``) for tests.

Independent of ``distgan prepare`` on purpose: the stream's tests must be able to build
broken shards (garbage, truncation, NaN, wrong rates) that ``prepare`` would refuse to write.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import soundfile
import webdataset as wds

from distgan.data.format import shard_name
from distgan.data.index import CorpusIndex, ShardEntry, SplitEntry

SAMPLE_RATE = 8000


def tone(samples: int, *, seed: int, sample_rate: int = SAMPLE_RATE, amplitude: float = 0.3) -> np.ndarray:
    """A distinct harmonic tone per seed plus a little noise: ``[samples]`` float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / sample_rate
    audio = amplitude * np.sin(2 * np.pi * (110 + 7 * seed) * t) + 0.01 * rng.standard_normal(samples)
    return audio.astype(np.float32)


def encode(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, fmt: str = "flac") -> bytes:
    """``fmt``: ``flac`` or ``wav`` (PCM-16), ``wav-float`` (32-bit float, may hold NaN/Inf)."""
    buffer = io.BytesIO()
    if fmt == "wav-float":
        soundfile.write(buffer, audio, sample_rate, format="WAV", subtype="FLOAT")
    else:
        soundfile.write(buffer, audio, sample_rate, format=fmt.upper(), subtype="PCM_16")
    return buffer.getvalue()


def sample(key: str, audio: np.ndarray | None, *, sample_rate: int = SAMPLE_RATE, fmt: str = "flac",
           audio_bytes: bytes | None = None, peak: float | None | str = "auto",
           text: str | None = None) -> dict[str, bytes]:
    """One sample's members: ``{"__key__", "flac"|"wav", "json"}`` (no audio when both are None).

    ``audio_bytes`` replaces the encoded audio (e.g. garbage); ``peak="auto"`` stores the real
    peak, ``None`` leaves it out of the JSON (the stream's slow path).
    """
    meta: dict[str, object] = {"key": key, "sample_rate": sample_rate, "channels": 1, "speaker": "s0",
                               "source": "test"}
    members: dict[str, bytes] = {"__key__": key.encode()}
    if audio is not None:
        meta.update(samples=len(audio), duration=len(audio) / sample_rate)
        if peak == "auto":
            meta["peak"] = float(np.abs(audio).max()) if len(audio) else 0.0
        members["wav" if fmt.startswith("wav") else fmt] = encode(audio, sample_rate, fmt)
    if peak not in ("auto", None):
        meta["peak"] = peak
    if audio_bytes is not None:
        members["flac"] = audio_bytes
    if text is not None:
        meta["text"] = text
    members["json"] = json.dumps(meta).encode()
    return members


def write_shard(path: Path, samples: list[dict[str, bytes]]) -> Path:
    with wds.TarWriter(str(path), encoder=False) as writer:
        for members in samples:
            writer.write({**members, "__key__": members["__key__"].decode()})
    return path


def write_corpus(folder: Path, splits: dict[str, list[list[dict[str, bytes]]]], *,
                 sample_rate: int = SAMPLE_RATE, index: bool = True) -> Path:
    """Write ``{split}-NNNNNN.tar`` shards (and ``index.json`` unless ``index=False``)."""
    folder.mkdir(parents=True, exist_ok=True)
    corpus = CorpusIndex(sample_rate=sample_rate, audio_format="flac")
    for split, shards in splits.items():
        entries = []
        for number, samples in enumerate(shards):
            write_shard(folder / shard_name(split, number), samples)
            entries.append(ShardEntry(shard_name(split, number), len(samples), 1.0 * len(samples)))
        corpus.splits[split] = SplitEntry(entries)
    if index:
        corpus.write(folder)
    return folder


def good_shards(shards: int, per_shard: int, *, prefix: str = "s", samples: int = 3000,
                fmt: str = "flac") -> list[list[dict[str, bytes]]]:
    """``shards`` lists of good samples keyed ``{prefix}{shard}_{i}``, lengths varying from ``samples``."""
    return [
        [sample(f"{prefix}{s}_{i:02d}", tone(samples + 97 * i, seed=s * 100 + i), fmt=fmt)
         for i in range(per_shard)]
        for s in range(shards)
    ]


def truncate(path: Path, fraction: float) -> Path:
    """Cut a file to ``fraction`` of its size (a shard whose upload or copy died half-way)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path
