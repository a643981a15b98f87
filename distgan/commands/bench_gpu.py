"""``distgan bench gpu``: one table on one GPU, distgan against the original code's step
(``distgan.bench.gpu_table``; ``launch/gpu_bench.sh`` installs the wheels a fresh machine lacks, then runs it)."""

from __future__ import annotations

import argparse

MODELS = ("hifigan", "bigvgan")
VARIANTS = ("fp32", "bf16", "bf16+compile")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true",
                        help="the same code at tiny shapes on the CPU, in this process (measures nothing)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                        help="HiFi-GAN V1 (batch 16 x 8192), BigVGAN-v2 (batch 4 x 65536)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
                        help="precision and compile settings per row (default: all three)")
    parser.add_argument("--steps", type=int, default=4, help="steps per side per round (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="unmeasured steps per side, compiling included (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default: %(default)s)")
    parser.add_argument("--budget", type=float, default=450.0,
                        help="seconds for the whole table; later rows are skipped (default: %(default)s)")


def main(args: argparse.Namespace) -> int:
    from distgan.bench.gpu_table import print_table

    print_table(args.models, args.variants, args.steps, args.warmup, args.rounds, args.budget, args.dry_run)
    return 0
