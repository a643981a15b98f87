"""``distgan evaluate --checkpoint PATH DATA``: copy-synthesis scored against the real audio.

Each clip's mel (computed with the model's own front end) goes through the generator, and the
output is scored against the clip with the metrics in ``metrics.py``. ``DATA`` is a shards folder
or ``index.json`` (its ``val`` split unless ``--split`` says otherwise) or a folder of wav files.
Under ``torchrun`` the clips are split between ranks and the rows gathered on rank 0, which
writes one CSV row per utterance and prints a summary table. A metric whose package is missing
on this platform is reported as unavailable, with the reason, instead of failing the run.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections.abc import Iterator
from pathlib import Path

import soundfile
import torch

from distgan.evaluation.metrics import METRICS, available_metrics, score, summarize
from distgan.inference.load import Vocoder, load_generator


def iter_clips(data: str, split: str, sample_rate: int, rank: int, world_size: int,
               max_clips: int | None) -> Iterator[tuple[str, torch.Tensor]]:
    """(key, waveform [T]) for this rank's share of the clips, in a fixed order."""
    path = Path(data)
    if path.is_dir() and not (path / "index.json").exists() and not list(path.glob("*.tar")):
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".wav", ".flac", ".ogg"))
        files = files[:max_clips] if max_clips else files
        for i, file in enumerate(files):
            if i % world_size != rank:
                continue
            wave, rate = soundfile.read(file, dtype="float32", always_2d=True)
            if rate != sample_rate:
                raise ValueError(f"{file}: sample rate {rate} Hz, the model expects {sample_rate} Hz")
            yield file.stem, torch.from_numpy(wave.mean(axis=1))
        return
    from distgan.data.shards import resolve_shards
    from distgan.data.stream import iter_validation

    shards = resolve_shards(data, split)
    if shards.sample_rate is not None and shards.sample_rate != sample_rate:
        raise ValueError(f"{data}: shards hold {shards.sample_rate} Hz audio, the model expects {sample_rate} Hz")
    for clip in iter_validation(shards, sample_rate=sample_rate, rank=rank, world_size=world_size,
                                mode="split", max_clips=max_clips):
        yield clip["key"], clip["audio"]


def evaluate(vocoder: Vocoder, clips: Iterator[tuple[str, torch.Tensor]], metrics: tuple[str, ...],
             device: torch.device) -> tuple[list[dict], float, float]:
    """Rows of scores, seconds of audio, seconds spent in the generator."""
    rows, audio_seconds, model_seconds = [], 0.0, 0.0
    hop, rate = vocoder.audio.hop_length, vocoder.audio.sample_rate
    for key, wave in clips:
        wave = wave[: len(wave) // hop * hop]
        if len(wave) == 0:
            continue
        start = time.perf_counter()
        fake = vocoder.resynthesize(wave.unsqueeze(0).to(device))[0].float().cpu()
        model_seconds += time.perf_counter() - start
        audio_seconds += len(wave) / rate
        row = {"key": key, "seconds": round(len(wave) / rate, 3)}
        row.update(score(wave.numpy(), fake.numpy(), rate, vocoder.audio, metrics=metrics))
        rows.append(row)
    return rows, audio_seconds, model_seconds


def _process_group() -> tuple[int, int]:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world_size


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path,
                        help="run directory, checkpoint folder or exported .safetensors")
    parser.add_argument("data", help="shards folder / index.json (val split) or a folder of wav files")
    parser.add_argument("--split", default="val")
    parser.add_argument("--out", type=Path, default=None, help="CSV of per-utterance scores")
    parser.add_argument("--metrics", nargs="+", default=list(METRICS), choices=list(METRICS))
    parser.add_argument("--max-clips", type=int, default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def main(args: argparse.Namespace) -> int:
    rank, world_size = _process_group()
    device = torch.device(args.device)
    if device.type == "cuda" and world_size > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    vocoder = load_generator(args.checkpoint, device=device)
    metrics = tuple(args.metrics)
    clips = iter_clips(args.data, args.split, vocoder.audio.sample_rate, rank, world_size, args.max_clips)
    rows, audio_seconds, model_seconds = evaluate(vocoder, clips, metrics, device)
    if world_size > 1:
        import torch.distributed as dist

        gathered: list = [None] * world_size
        dist.all_gather_object(gathered, (rows, audio_seconds, model_seconds))
        rows = [row for part in gathered for row in part[0]]
        audio_seconds = sum(part[1] for part in gathered)
        model_seconds = max(part[2] for part in gathered)
    if rank != 0:
        return 0
    rows.sort(key=lambda row: row["key"])
    if not rows:
        print(f"distgan evaluate: no clips found in {args.data}")
        return 2
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["key", "seconds", *metrics])
            writer.writeheader()
            writer.writerows(rows)
    print_summary(rows, metrics, audio_seconds, model_seconds, args.out)
    return 0


def print_summary(rows: list[dict], metrics: tuple[str, ...], audio_seconds: float,
                  model_seconds: float, csv_path: Path | None) -> None:
    summary = summarize([{m: row.get(m) for m in metrics} for row in rows])
    missing = available_metrics()
    print(f"{len(rows)} utterances, {audio_seconds:.1f} s of audio; generator real-time factor "
          f"{model_seconds / max(audio_seconds, 1e-9):.4f}")
    print(f"{'metric':<16}{'mean':>10}{'std':>10}{'n':>6}")
    for metric in metrics:
        stats = summary.get(metric)
        if stats and stats["count"]:
            print(f"{metric:<16}{stats['mean']:>10.4f}{stats['std']:>10.4f}{int(stats['count']):>6}")
        else:
            print(f"{metric:<16}{'n/a':>10}{'':>10}{0:>6}  {missing.get(metric) or 'undefined on these clips'}")
    if csv_path is not None:
        print(f"per-utterance scores: {csv_path}")
