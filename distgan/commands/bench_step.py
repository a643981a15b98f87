"""``distgan bench step --config C``: distgan's training step against a plain loop (``distgan.bench.step``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from distgan.config import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="recipe to time, e.g. configs/hifigan_v1.yaml")
    parser.add_argument("--steps", type=int, default=20, help="measured steps (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured steps first (default: %(default)s)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")


def main(args: argparse.Namespace) -> int:
    import torch

    from distgan.bench.step import PHASES, bench_distgan, bench_plain, sample_batches

    fixed = ["log.progress_bar=false", "log.val_every_steps=0", "checkpoint.every_steps=0",
             "faults.watchdog_minutes=0", f"train.max_steps={args.warmup + args.steps + 1}"]
    cfg = load_config(args.config, [*args.overrides, *fixed])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batches = sample_batches(cfg, 4)
    rounds = f"{args.warmup} warm-up + {args.steps} measured steps"
    print(f"timing the plain loop ({rounds})...", flush=True)
    plain = bench_plain(cfg, args.steps, args.warmup, batches, device)
    print(f"timing distgan's Trainer ({rounds})...", flush=True)
    ours = bench_distgan(cfg, args.steps, args.warmup)
    audio_seconds = cfg.data.batch_size * cfg.data.segment_samples / cfg.audio.sample_rate
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"distgan bench step: {args.config} on {where}; batch {cfg.data.batch_size} x "
          f"{cfg.data.segment_samples} samples, precision {cfg.train.precision}, median of {args.steps} steps "
          f"after {args.warmup} warm-up")
    print(f"{'':<10}{'s/step':>9}{'data':>9}{'G fwd':>9}{'D upd':>9}{'G upd':>9}{'other':>9}{'audio-s/s':>11}")
    other = ours["step"] - sum(ours[p] for p in PHASES)
    print(f"{'distgan':<10}{ours['step']:>9.4f}" + "".join(f"{ours[p]:>9.4f}" for p in PHASES)
          + f"{other:>9.4f}{audio_seconds / ours['step']:>11.2f}")
    print(f"{'plain':<10}{plain['step']:>9.4f}{'':>45}{audio_seconds / plain['step']:>11.2f}")
    ratio = ours["step"] / plain["step"]
    print(f"overhead: distgan / plain = {ratio:.3f}x ({(ratio - 1) * 100:+.1f}%)")
    return 0
