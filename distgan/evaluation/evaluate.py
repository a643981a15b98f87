"""Copy-synthesis scored against the real audio: the work behind ``distgan evaluate``.

Each clip's mel (computed with the model's own front end) goes through the generator, and the
output is scored against the clip with the metrics in ``metrics.py``. ``DATA`` is a shards folder
or ``index.json`` (its ``val`` split unless ``--split`` says otherwise) or a folder of audio files.
Under ``torchrun`` the clips are split between ranks and the rows gathered on rank 0, which
writes one CSV row per utterance (sorted by key) and prints a summary table.

A file or clip that cannot be scored meaningfully is skipped with a named reason, and the rest
are scored: unreadable, empty, NaN/Inf, another sample rate than the model's, shorter than
``MIN_SCORED_SAMPLES``, or a silent reference (its level is what every metric compares with: one
silent clip moved a folder's MR-STFT mean from 4 to 1685).

A metric whose package is missing on this platform does not fail the run: its CSV cells are
empty and its summary row says ``unavailable`` with the reason. A metric undefined for one clip
(PESQ without speech activity, F0 without voiced frames) is ``nan`` in that clip's row.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile
import torch
from tqdm import tqdm

from distgan.data.audiofile import SOUNDFILE_ERRORS, audio_files
from distgan.data.format import INDEX_NAME, SILENCE_PEAK
from distgan.evaluation.metrics import MIN_SCORED_SAMPLES, available_metrics, score, summarize
from distgan.inference.load import Vocoder

Clips = Iterator[tuple[str, torch.Tensor]]


def _skip(path: Path, reason: str) -> None:
    print(f"distgan evaluate: {path} skipped: {reason}", flush=True)


def _audio_files(folder: Path, sample_rate: int, max_clips: int | None) -> list[Path]:
    """Readable, non-empty audio files (others are reported and skipped); every one is checked
    on every rank before any is scored, so a sample-rate mismatch stops all ranks together."""
    usable = []
    for file in audio_files(folder):
        try:
            info = soundfile.info(str(file))
        except SOUNDFILE_ERRORS as err:
            _skip(file, f"not readable audio ({' '.join(str(err).split())})")
            continue
        if info.frames == 0:
            _skip(file, "empty")
            continue
        if info.samplerate != sample_rate:  # the rest of the folder is still scored
            _skip(file, f"sample rate {info.samplerate} Hz, but the model was trained at {sample_rate} Hz "
                        "(resample it first)")
            continue
        usable.append(file)
    if not usable:
        raise ValueError(f"{folder}: no readable audio file at {sample_rate} Hz to score (see the skipped files "
                         "above)")
    return usable[:max_clips] if max_clips else usable


def _read_files(folder: Path, files: list[Path]) -> Clips:
    for file in files:
        try:
            wave, _ = soundfile.read(file, dtype="float32", always_2d=True)
        except SOUNDFILE_ERRORS as err:
            _skip(file, f"not readable audio ({' '.join(str(err).split())})")
            continue
        if not np.isfinite(wave).all():
            _skip(file, "NaN or Inf in the samples")
            continue
        yield file.relative_to(folder).with_suffix("").as_posix(), torch.from_numpy(wave.mean(axis=1))


def clips_for_rank(data: str, split: str, sample_rate: int, rank: int, world_size: int,
                   max_clips: int | None, allow_index_pipes: bool = False) -> Clips:
    """(key, waveform [T]) for this rank's share of the clips, in key order.

    Problems with the data as a whole (missing split, wrong sample rate) raise here, before any
    clip is read; ``max_clips`` keeps the first clips in key order before they are shared out.
    """
    path = Path(data)
    if path.is_dir() and not (path / INDEX_NAME).exists() and not list(path.glob("*.tar")):
        return _read_files(path, _audio_files(path, sample_rate, max_clips)[rank::world_size])
    from distgan.data.shards import resolve_shards
    from distgan.data.stream import iter_utterances

    shards = resolve_shards(data, split, allow_index_pipes)
    if shards.sample_rate is not None and shards.sample_rate != sample_rate:
        raise ValueError(f"{data}: shards hold {shards.sample_rate} Hz audio, but the model was trained at "
                         f"{sample_rate} Hz")
    clips = iter_utterances(shards, sample_rate=sample_rate, rank=rank, world_size=world_size,
                            mode="split", max_clips=max_clips)
    return ((clip["key"], clip["audio"]) for clip in clips)


def evaluate(vocoder: Vocoder, clips: Clips, metrics: tuple[str, ...], device: torch.device,
             progress: bool = False) -> tuple[list[dict], float, float]:
    """Rows of scores, seconds of audio scored, seconds spent in the generator; ``progress``
    shows a bar of clips scored (PESQ and F0 take about a second a clip on a CPU)."""
    rows, audio_seconds, model_seconds = [], 0.0, 0.0
    hop, rate = vocoder.audio.hop_length, vocoder.audio.sample_rate
    for key, wave in tqdm(clips, desc="evaluate", unit="clip", disable=not progress, dynamic_ncols=True):
        wave = wave[: len(wave) // hop * hop]
        if len(wave) < MIN_SCORED_SAMPLES:
            print(f"distgan evaluate: {key} skipped: {len(wave)} samples, fewer than {MIN_SCORED_SAMPLES}")
            continue
        peak = float(wave.abs().max())
        if peak < SILENCE_PEAK:  # every metric compares with the reference's level: one such clip moves a mean
            print(f"distgan evaluate: {key} skipped: silent reference (peak {peak:.3g} < {SILENCE_PEAK:g}), "
                  "nothing to compare the copy-synthesis with")
            continue
        start = time.perf_counter()
        fake = vocoder.resynthesize(wave.unsqueeze(0).to(device))[0]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        model_seconds += time.perf_counter() - start
        audio_seconds += len(wave) / rate
        row = {"key": key, "seconds": round(len(wave) / rate, 3)}
        row.update(score(wave.numpy(), fake.float().cpu().numpy(), rate, vocoder.audio, metrics=metrics))
        rows.append(row)
    return rows, audio_seconds, model_seconds


def write_csv(rows: list[dict], metrics: tuple[str, ...], path: Path) -> None:
    """One row per utterance; a metric that is unavailable (None) becomes an empty cell."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["key", "seconds", *metrics])
        writer.writeheader()
        writer.writerows(rows)


def print_summary(rows: list[dict], metrics: tuple[str, ...], audio_seconds: float,
                  model_seconds: float, csv_path: Path | None) -> None:
    summary = summarize([{m: row.get(m) for m in metrics} for row in rows])
    missing = available_metrics()
    print(f"{len(rows)} utterances, {audio_seconds:.1f} s of audio; generator real-time factor "
          f"{model_seconds / max(audio_seconds, 1e-9):.4f} (seconds of compute per second of audio)")
    print(f"{'metric':<16}{'mean':>10}{'std':>10}{'n':>6}")
    for metric in metrics:
        stats = summary[metric]
        if stats["count"]:
            print(f"{metric:<16}{stats['mean']:>10.4f}{stats['std']:>10.4f}{stats['count']:>6}")
        elif missing.get(metric):
            print(f"{metric:<16}{'n/a':>10}{'':>10}{0:>6}  unavailable: {missing[metric]}")
        else:
            print(f"{metric:<16}{'n/a':>10}{'':>10}{0:>6}  undefined on every clip")
    if csv_path is not None:
        print(f"per-utterance scores: {csv_path}")
