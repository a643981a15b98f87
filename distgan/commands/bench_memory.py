"""``distgan bench memory``: what each of two CPU ranks holds under DDP and ZeRO-1/2/3, and the peak
memory of a step with and without activation checkpointing (``distgan.bench.memory``)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[2] / "configs"
MIB = 2**20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=RECIPES / "bigvgan_v2_22khz_80band_256x.yaml",
                        help="recipe whose models are measured (default: %(default)s)")
    parser.add_argument("--modes", nargs="+", default=["ddp", "zero1", "zero2", "zero3"],
                        choices=["ddp", "zero1", "zero2", "zero3"], help="launch modes, two CPU ranks each")
    parser.add_argument("--segment", type=int, default=8192,
                        help="samples per clip of the measured step (default: %(default)s; state sizes do not "
                             "depend on it, the step's peak does; a codec needs a multiple of its hop)")
    parser.add_argument("--batch-size", type=int, default=1, help="clips per rank (default: %(default)s)")
    parser.add_argument("--no-peaks", action="store_true", help="skip the activation-checkpointing comparison")
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")


def main(args: argparse.Namespace) -> int:
    from distgan.bench.memory import measure_modes, measure_peaks
    from distgan.config import ConfigError, load_config

    overrides = [*args.overrides, f"data.segment_samples={args.segment}", f"data.batch_size={args.batch_size}",
                 "data.num_workers=0"]
    try:  # here, before any rank starts, so a setting the recipe refuses is one line, not two ranks' tracebacks
        load_config(args.config, overrides)
    except ConfigError as err:
        print(f"distgan bench memory: config error: {err} (--segment sets data.segment_samples)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="distgan-memory-") as out:
        modes = measure_modes(args.config, overrides, args.modes, Path(out))
    peaks = {} if args.no_peaks else measure_peaks(args.config, overrides)
    print(f"distgan bench memory: {args.config.name}, 2 CPU ranks, batch {args.batch_size} x {args.segment} "
          "samples; per rank, generator + discriminators, MiB (x DDP)")
    for line in state_table(modes):
        print(line)
    if peaks:
        off, on = peaks[False], peaks[True]
        print(f"one training step in one process, peak resident set: activation checkpointing off "
              f"{off['peak_mib']:.0f} MiB (the step adds {off['step_rise_mib']:.0f}), on {on['peak_mib']:.0f} MiB "
              f"(adds {on['step_rise_mib']:.0f}; x{on['step_rise_mib'] / off['step_rise_mib']:.2f})")
    if args.json:
        args.json.write_text(json.dumps({"modes": modes, "peaks": {str(k): v for k, v in peaks.items()}}, indent=1))
    return 0


def _totals(rank: dict) -> dict[str, float]:
    models = [rank["generator"], rank["discriminator"]]
    return {key: sum(m.get(key, 0) for m in models) / MIB for key in ("moments", "master", "params", "grads", "ema")}


def state_table(modes: dict[str, list[dict]]) -> list[str]:
    """One row per mode and rank: optimizer state (Adam moments + fp32 master) and parameters +
    gradients, each with its ratio to DDP's rank 0 when DDP was measured; with ``train.ema_decay``,
    the average of G's weights the rank keeps (its ratio to DDP's too)."""
    ddp = _totals(modes["ddp"][0]) if "ddp" in modes else None
    with_ema = any(rank["generator"].get("ema") for ranks in modes.values() for rank in ranks)
    lines = [f"{'mode':<6}{'rank':>5}{'Adam moments':>14}{'fp32 master':>13}{'optimizer state':>22}"
             f"{'params':>10}{'grads':>10}{'params + grads':>22}" + (f"{'G EMA':>18}" if with_ema else "")]
    for mode, ranks in modes.items():
        for rank in ranks:
            t = _totals(rank)
            state, weights = t["moments"] + t["master"], t["params"] + t["grads"]
            state_ratio = f" (x{state / (ddp['moments'] + ddp['master']):.2f})" if ddp else ""
            weights_ratio = f" (x{weights / (ddp['params'] + ddp['grads']):.2f})" if ddp else ""
            ema = f"{t['ema']:.2f}" + (f" (x{t['ema'] / ddp['ema']:.2f})" if ddp and ddp["ema"] else "")
            lines.append(f"{mode:<6}{rank['rank']:>5}{t['moments']:>14.1f}{t['master']:>13.1f}"
                         f"{f'{state:.1f}{state_ratio}':>22}{t['params']:>10.1f}{t['grads']:>10.1f}"
                         f"{f'{weights:.1f}{weights_ratio}':>22}" + (f"{ema:>18}" if with_ema else ""))
    return lines
