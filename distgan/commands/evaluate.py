"""``distgan evaluate --checkpoint PATH DATA``: copy-synthesis scored against the real audio.

The scoring is ``distgan.evaluation.evaluate``. Under ``torchrun`` every rank scores its share
of the clips and rank 0 gathers the rows, writes the CSV and prints the summary.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from distgan.config.schema import QUALITY_METRICS as METRICS  # torch-free copy of evaluation.metrics

if TYPE_CHECKING:  # torch is imported only once the command runs
    from distgan.distributed import ProcessInfo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path,
                        help="run directory, checkpoint folder or exported .safetensors")
    parser.add_argument("data", help="shards folder / index.json (val split) or a folder of audio files")
    parser.add_argument("--split", default="val", help="split of the shards to score (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None, help="CSV of per-utterance scores")
    parser.add_argument("--metrics", nargs="+", default=list(METRICS), choices=list(METRICS), metavar="METRIC",
                        help=f"metrics to compute (default: all of {', '.join(METRICS)})")
    parser.add_argument("--max-clips", type=int, default=None, help="score the first N clips (by key)")
    parser.add_argument("--allow-index-pipes", action="store_true",
                        help="run the shell commands of pipe: shards listed in DATA's index.json")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available, else cpu)")


def main(args: argparse.Namespace) -> int:
    import torch

    from distgan import distributed

    info = distributed.join_process_group(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        return _run(args, info)
    finally:
        distributed.leave_process_group()


def _run(args: argparse.Namespace, info: ProcessInfo) -> int:
    from distgan import distributed
    from distgan.evaluation.evaluate import clips_for_rank, evaluate, print_summary, write_csv
    from distgan.inference.load import load_generator

    metrics = tuple(dict.fromkeys(args.metrics))
    try:
        vocoder = load_generator(args.checkpoint, device=info.device)
        clips = clips_for_rank(args.data, args.split, vocoder.audio.sample_rate, info.rank, info.world_size,
                               args.max_clips, args.allow_index_pipes)
    except (ValueError, FileNotFoundError) as err:
        # The same on every rank (they read the same model and data), so all ranks stop here.
        print(f"distgan evaluate: {err}")
        return 2
    rows, audio_seconds, model_seconds = evaluate(vocoder, clips, metrics, info.device, progress=info.is_main)
    parts = distributed.all_gather_object((rows, audio_seconds, model_seconds))
    if not info.is_main:
        return 0
    rows = sorted((row for part in parts for row in part[0]), key=lambda row: row["key"])
    audio_seconds, model_seconds = sum(part[1] for part in parts), sum(part[2] for part in parts)
    if not rows:
        print(f"distgan evaluate: no clips to score in {args.data}")
        return 2
    if args.out is not None:
        write_csv(rows, metrics, args.out)
    print_summary(rows, metrics, audio_seconds, model_seconds, args.out)
    return 0
