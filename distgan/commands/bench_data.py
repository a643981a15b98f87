"""``distgan bench data SHARDS``: the streaming pipeline against a file-list loader (``distgan.bench.data``)."""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="shards: a folder with index.json, an index.json, a brace pattern")
    parser.add_argument("--workers", type=int, default=2, help="measure 1..N DataLoader workers")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per batch (default: %(default)s)")
    parser.add_argument("--segment-samples", type=int, default=8192,
                        help="samples per cropped clip (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per loader and count")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each measurement")
    parser.add_argument("--split", default="train", help="split of the shards to read (default: %(default)s)")


def main(args: argparse.Namespace) -> int:
    from distgan.bench.data import bench_data, format_table

    print(f"reading {args.dir} with 1..{args.workers} workers, {args.seconds:g} s each (after "
          f"{args.warmup:g} s warm-up), streaming and file-list loaders...", flush=True)
    try:
        rows = bench_data(args.dir, max_workers=args.workers, batch_size=args.batch_size,
                          segment_samples=args.segment_samples, seconds=args.seconds, warmup=args.warmup,
                          split=args.split)
    except (ValueError, FileNotFoundError) as err:  # shards it cannot measure: one line, not a traceback
        print(f"distgan bench data: {err}", file=sys.stderr)
        return 2
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"distgan bench data: {args.dir} ({args.split}), batch {args.batch_size}, "
          f"segment {args.segment_samples} samples, {cores} CPU cores available")
    print(format_table(rows))
    return 0
