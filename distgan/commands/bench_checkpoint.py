"""``distgan bench checkpoint``: what digests and fsync add to a checkpoint's save and load
(``distgan.bench.checkpoint``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from distgan.bench.checkpoint import bench_checkpoint
from distgan.config import load_config

RECIPES = Path(__file__).resolve().parents[2] / "configs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=RECIPES / "hifigan_v1.yaml",
                        help="recipe whose models are checkpointed (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the median is reported (default: 3)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    t = bench_checkpoint(cfg, args.repeats)
    print(f"distgan bench checkpoint: {args.config.name}, {t['bytes'] / 2**20:.0f} MiB of model and AdamW state, "
          f"median of {args.repeats}, files in the page cache")
    print(f"save: torch.save {t['write']:.3f} s; + digests {t['digest']:.3f} s "
          f"({t['digest'] / t['write']:+.1%}); + fsync {t['fsync']:.3f} s")
    print(f"load: torch.load (weights only) {t['load']:.3f} s; + digests and unpickling check {t['verify']:.3f} s "
          f"({t['verify'] / t['load']:+.1%})")
    return 0
