"""``distgan bench checkpoint``: what digests and fsync add to a checkpoint's save and load
(``distgan.bench.checkpoint``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from distgan.config import load_config

RECIPES = Path(__file__).resolve().parents[2] / "configs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=RECIPES / "hifigan_v1.yaml",
                        help="recipe whose models are checkpointed (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the median is reported (default: 3)")
    parser.add_argument("--cold", action="store_true",
                        help="also time loads from the disk (drops the page cache: Linux, root)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")


def main(args: argparse.Namespace) -> int:
    from distgan.bench.checkpoint import bench_checkpoint

    cfg = load_config(args.config, args.overrides)
    print(f"saving and loading {args.config.name}'s models and optimizer states, {args.repeats} rounds...",
          flush=True)
    t = bench_checkpoint(cfg, args.repeats, args.cold)
    print(f"distgan bench checkpoint: {args.config.name}, {t['bytes'] / 2**20:.0f} MiB of model and AdamW state, "
          f"median of {args.repeats}, files in the page cache")
    print(f"save: torch.save {t['save']:.3f} s; + digests and fsync {t['digest_fsync']:.3f} s "
          f"({t['digest_fsync'] / t['save']:+.1%})")
    print(f"load: torch.load (weights only) {t['load']:.3f} s; + digests verified first {t['digest']:.3f} s "
          f"({t['digest'] / t['load']:+.1%}); DeepSpeed files also: unpickling check {t['mmap_check']:.3f} s "
          f"({t['mmap_check'] / t['load']:+.1%})")
    if args.cold:
        print(f"load from the disk: torch.load {t['cold_load']:.3f} s; digests then torch.load "
              f"{t['cold_verified_load']:.3f} s ({t['cold_verified_load'] / t['cold_load'] - 1:+.1%})")
    return 0
