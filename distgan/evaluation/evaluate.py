"""``distgan evaluate --checkpoint PATH DATA``: copy-synthesis scored against the real audio.

Each clip's mel (computed with the model's own front end) goes through the generator, and the
output is scored against the clip with the metrics in ``metrics.py``. ``DATA`` is a shards folder
or ``index.json`` (its ``val`` split unless ``--split`` says otherwise) or a folder of audio files.
Under ``torchrun`` the clips are split between ranks and the rows gathered on rank 0, which
writes one CSV row per utterance (sorted by key) and prints a summary table.

A metric whose package is missing on this platform does not fail the run: its CSV cells are
empty and its summary row says ``unavailable`` with the reason. A metric undefined for one clip
(PESQ without speech activity, F0 without voiced frames) is ``nan`` in that clip's row.
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

from distgan.evaluation.metrics import METRICS, MIN_SCORED_SAMPLES, available_metrics, score, summarize
from distgan.inference.load import Vocoder, load_generator

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")

Clips = Iterator[tuple[str, torch.Tensor]]


def _audio_files(folder: Path, sample_rate: int, max_clips: int | None) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    files = files[:max_clips] if max_clips else files
    # Every file is checked on every rank before any is scored, so all ranks fail together.
    for file in files:
        rate = soundfile.info(str(file)).samplerate
        if rate != sample_rate:
            raise ValueError(f"{file}: sample rate {rate} Hz, but the model was trained at {sample_rate} Hz "
                             "(resample it first)")
    return files


def clips_for_rank(data: str, split: str, sample_rate: int, rank: int, world_size: int,
                   max_clips: int | None) -> Clips:
    """(key, waveform [T]) for this rank's share of the clips, in key order.

    Problems with the data as a whole (missing split, wrong sample rate) raise here, before any
    clip is read; ``max_clips`` keeps the first clips in key order before they are shared out.
    """
    path = Path(data)
    if path.is_dir() and not (path / "index.json").exists() and not list(path.glob("*.tar")):
        files = _audio_files(path, sample_rate, max_clips)

        def read_files() -> Clips:
            for file in files[rank::world_size]:
                wave, _ = soundfile.read(file, dtype="float32", always_2d=True)
                yield file.relative_to(path).with_suffix("").as_posix(), torch.from_numpy(wave.mean(axis=1))

        return read_files()
    from distgan.data.shards import resolve_shards
    from distgan.data.stream import iter_validation

    shards = resolve_shards(data, split)
    if shards.sample_rate is not None and shards.sample_rate != sample_rate:
        raise ValueError(f"{data}: shards hold {shards.sample_rate} Hz audio, but the model was trained at "
                         f"{sample_rate} Hz")
    clips = iter_validation(shards, sample_rate=sample_rate, rank=rank, world_size=world_size,
                            mode="split", max_clips=max_clips)
    return ((clip["key"], clip["audio"]) for clip in clips)


def evaluate(vocoder: Vocoder, clips: Clips, metrics: tuple[str, ...], device: torch.device
             ) -> tuple[list[dict], float, float]:
    """Rows of scores, seconds of audio scored, seconds spent in the generator."""
    rows, audio_seconds, model_seconds = [], 0.0, 0.0
    hop, rate = vocoder.audio.hop_length, vocoder.audio.sample_rate
    for key, wave in clips:
        wave = wave[: len(wave) // hop * hop]
        if len(wave) < MIN_SCORED_SAMPLES:
            print(f"distgan evaluate: {key} skipped: {len(wave)} samples, fewer than {MIN_SCORED_SAMPLES}")
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


def _process_group() -> tuple[int, int]:
    """(rank, world size); joins the process group that torchrun describes in the environment."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world_size


def _gather(rows: list[dict], audio_seconds: float, model_seconds: float
            ) -> tuple[list[dict], float, float]:
    import torch.distributed as dist

    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, (rows, audio_seconds, model_seconds))
    return ([row for part in parts for row in part[0]], sum(part[1] for part in parts),
            sum(part[2] for part in parts))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path,
                        help="run directory, checkpoint folder or exported .safetensors")
    parser.add_argument("data", help="shards folder / index.json (val split) or a folder of audio files")
    parser.add_argument("--split", default="val", help="split of the shards to score")
    parser.add_argument("--out", type=Path, default=None, help="CSV of per-utterance scores")
    parser.add_argument("--metrics", nargs="+", default=list(METRICS), choices=list(METRICS))
    parser.add_argument("--max-clips", type=int, default=None, help="score the first N clips (by key)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def main(args: argparse.Namespace) -> int:
    rank, world_size = _process_group()
    try:
        return _run(args, rank, world_size)
    finally:
        if world_size > 1:
            torch.distributed.destroy_process_group()


def _run(args: argparse.Namespace, rank: int, world_size: int) -> int:
    device = torch.device(args.device)
    if device.type == "cuda" and world_size > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)  # NCCL's object gather uses the current device
    metrics = tuple(dict.fromkeys(args.metrics))
    try:
        vocoder = load_generator(args.checkpoint, device=device)
        clips = clips_for_rank(args.data, args.split, vocoder.audio.sample_rate, rank, world_size,
                               args.max_clips)
    except (ValueError, FileNotFoundError) as err:
        # The same on every rank (they read the same model and data), so all ranks stop here.
        print(f"distgan evaluate: {err}")
        return 2
    rows, audio_seconds, model_seconds = evaluate(vocoder, clips, metrics, device)
    if world_size > 1:
        rows, audio_seconds, model_seconds = _gather(rows, audio_seconds, model_seconds)
    if rank != 0:
        return 0
    if not rows:
        print(f"distgan evaluate: no clips to score in {args.data}")
        return 2
    rows.sort(key=lambda row: row["key"])
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["key", "seconds", *metrics])
            writer.writeheader()
            writer.writerows(rows)  # None (metric unavailable) becomes an empty cell
    print_summary(rows, metrics, audio_seconds, model_seconds, args.out)
    return 0


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
