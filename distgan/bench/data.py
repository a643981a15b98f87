"""The streaming pipeline against a HiFi-GAN-style file-list loader (``distgan bench data``).

Both loaders run in the same process, on the same audio, with the same worker count and batch
size, for each worker count from 1 to ``--workers``:

- baseline: the shards' audio extracted once to PCM-16 wav files, a map-style ``Dataset`` that
  reads a whole file with ``soundfile.read`` and crops a random segment (what file-list
  vocoder loaders do), through a shuffling ``DataLoader``;
- distgan: ``TrainStream`` + ``TrainLoader`` on the shards (rank 0 of 1).

Each loader first runs ``--warmup`` seconds (workers start, page cache fills); then the two take
turns, ``ROUNDS`` windows each, counting segments for ``--seconds`` in all and starting new
epochs as needed (small corpora end quickly).
"""

from __future__ import annotations

import io
import random
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import soundfile
import torch
from torch.utils.data import DataLoader, Dataset

from distgan.data.shards import ShardReadError, ShardSet, iter_shard, resolve_shards
from distgan.data.stream import TrainLoader, TrainStream
from distgan.data.stream.decode import find_audio
from distgan.data.stream.skips import BadSample


@dataclass
class BenchRow:
    """Throughput with ``workers`` DataLoader workers, in training segments per second."""

    workers: int
    baseline_segments_per_s: float
    distgan_segments_per_s: float
    distgan_audio_seconds_per_s: float

    @property
    def ratio(self) -> float:
        return self.distgan_segments_per_s / self.baseline_segments_per_s


class FileListDataset(Dataset):
    """The baseline: one wav file per item, decoded whole, one random ``[segment_samples]`` crop.

    Read as float32 (``soundfile.read`` defaults to float64, which would slow it down): the
    baseline is given the same output type as the stream, so the ratio is not flattered.
    """

    def __init__(self, paths: list[Path], segment_samples: int) -> None:
        self.paths = paths
        self.segment_samples = segment_samples

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        audio, _ = soundfile.read(self.paths[index], dtype="float32")
        audio = torch.from_numpy(audio)
        if audio.shape[0] >= self.segment_samples:
            # torch seeds ``random`` per DataLoader worker, so workers draw different offsets.
            start = random.randint(0, audio.shape[0] - self.segment_samples)
            return audio[start: start + self.segment_samples]
        return torch.nn.functional.pad(audio, (0, self.segment_samples - audio.shape[0]))


def extract_wavs(shards: ShardSet, folder: Path) -> tuple[list[Path], int]:
    """Write every sample's audio as ``folder/KEY.wav`` (PCM-16); returns the paths and the rate."""
    paths, sample_rate = [], 0
    for shard in shards.shards:
        try:
            for sample in iter_shard(shard.url):
                try:
                    audio, sample_rate = soundfile.read(io.BytesIO(find_audio(sample.members)), dtype="float32")
                except (BadSample, RuntimeError):
                    continue
                path = folder / f"{sample.key.replace('/', '__')}.wav"
                soundfile.write(path, audio, sample_rate, subtype="PCM_16")
                paths.append(path)
        except ShardReadError:
            continue
    if not paths:
        raise ValueError("no readable audio in the shards")
    return paths, shards.sample_rate or sample_rate


# Measurements alternate between the loaders in this many rounds, so that a change in the
# machine's background load (other jobs on shared cores) hits both alike.
ROUNDS = 3


class _Meter:
    """Counts segments per second over several measuring windows of one endless iterator."""

    def __init__(self, batches: Iterator[torch.Tensor]) -> None:
        self.batches = batches
        self.segments = 0
        self.seconds = 0.0

    def measure(self, seconds: float, warmup: float) -> None:
        start = time.perf_counter()
        while time.perf_counter() - start < warmup:
            next(self.batches)
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            self.segments += next(self.batches).shape[0]
        self.seconds += elapsed

    @property
    def rate(self) -> float:
        return self.segments / self.seconds


def _baseline_batches(loader: DataLoader) -> Iterator[torch.Tensor]:
    while True:
        yield from loader


def _distgan_batches(loader: TrainLoader) -> Iterator[torch.Tensor]:
    while True:
        for batch in loader.next_epoch():
            yield batch["audio"]


def bench_data(spec: str, *, max_workers: int = 2, batch_size: int = 16, segment_samples: int = 8192,
               seconds: float = 10.0, warmup: float = 2.0, split: str = "train", seed: int = 0) -> list[BenchRow]:
    """Measure both loaders for 1..``max_workers`` workers; returns one row per worker count."""
    shards = resolve_shards(spec, split)
    if any(shard.is_pipe for shard in shards.shards):
        raise ValueError(f"{spec}: bench data measures local shards (both loaders read the same files from "
                         "this disk); pipe: shards are refused: copy them into a folder and pass the folder")
    rows = []
    with tempfile.TemporaryDirectory(prefix="distgan-bench-") as tmp:
        paths, sample_rate = extract_wavs(shards, Path(tmp))
        for workers in range(1, max_workers + 1):
            baseline = DataLoader(FileListDataset(paths, segment_samples), batch_size=batch_size, shuffle=True,
                                  num_workers=workers, persistent_workers=True)
            stream = TrainStream(shards, sample_rate=sample_rate, segment_samples=segment_samples,
                                 batch_size=batch_size, rank=0, world_size=1, seed=seed, short_clips="pad")
            loader = TrainLoader(stream, num_workers=workers, pin_memory=False)
            meters = [_Meter(_baseline_batches(baseline)), _Meter(_distgan_batches(loader))]
            for round_number in range(ROUNDS):
                for meter in meters:  # the first window of each also starts its workers
                    meter.measure(seconds / ROUNDS, warmup if round_number == 0 else warmup / ROUNDS)
            baseline_rate, distgan_rate = (m.rate for m in meters)
            del meters, baseline, loader  # stops both loaders' workers before the next count
            rows.append(BenchRow(workers, baseline_rate, distgan_rate, distgan_rate * segment_samples / sample_rate))
    return rows


def format_table(rows: list[BenchRow]) -> str:
    lines = [f"{'workers':>7} | {'baseline seg/s':>14} | {'distgan seg/s':>13} | {'audio-s/s':>9} | {'ratio':>5}"]
    lines.append("-" * len(lines[0]))
    for r in rows:
        lines.append(f"{r.workers:>7} | {r.baseline_segments_per_s:>14.1f} | {r.distgan_segments_per_s:>13.1f} | "
                     f"{r.distgan_audio_seconds_per_s:>9.1f} | {r.ratio:>4.2f}x")
    return "\n".join(lines)
