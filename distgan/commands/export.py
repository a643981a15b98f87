"""``distgan export SOURCE OUT.safetensors``: a run's generator as plain fp32 weights (``distgan.inference.export``)."""

from __future__ import annotations

import argparse
from pathlib import Path

EXPORT_SUFFIX = ".safetensors"  # distgan.checkpoint.weights.EXPORT_SUFFIX (a test keeps them equal)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="run directory (newest complete checkpoint) or checkpoint folder")
    parser.add_argument("out", type=Path, help="output .safetensors file")


def main(args: argparse.Namespace) -> int:
    if args.out.suffix != EXPORT_SUFFIX:
        print(f"distgan export: output must end in {EXPORT_SUFFIX}, got {args.out}")
        return 2
    from distgan.inference.export import export_generator  # torch: only once the command runs

    try:
        path = export_generator(args.source, args.out)
    except (ValueError, FileNotFoundError) as err:
        print(f"distgan export: {err}")
        return 2
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB) and {path.with_suffix('.yaml')}")
    return 0
