"""``distgan bench step --config C``: distgan's training step against a plain loop or the original
code's step (``distgan.bench.step``), and the bytes each rank sends per step (``distgan.bench.traffic``)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from distgan.config import load_config

MODES = ("ddp", "zero1", "zero2", "zero3")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="recipe to time, e.g. configs/hifigan_v1.yaml")
    parser.add_argument("--baseline", choices=["plain", "reference"], default="plain",
                        help="plain: the same step in a bare PyTorch loop (distgan's overhead); reference: the "
                             "original code's step for the config's family (HiFi-GAN, BigVGAN, Vocos, DAC) (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=20,
                        help="measured steps (plain: median; reference: per round, minimum over all)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured steps first (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="reference: alternating rounds of --steps steps per side (default: %(default)s)")
    parser.add_argument("--profile", action="store_true",
                        help="reference, on CPU: then profile one more step per side: the share of its time in "
                             "convolutions, matrix multiplies and weight norm, the convolutions' GFLOP/s beside "
                             "a large matrix multiply's, and the slowest operators")
    parser.add_argument("--traffic", type=_modes, metavar="MODES",
                        help="also count the bytes each of two CPU ranks sends per step in these launch modes, "
                             "comma-separated (ddp,zero1,zero2,zero3), from the collectives")
    parser.add_argument("--under-load", type=int, metavar="N",
                        help="instead: Trainer.fit with torch's thread defaults, with one thread and with distgan's "
                             "defaults, each in its own process, while N busy-loop processes load the CPU (0: idle)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")


def _modes(text: str) -> list[str]:
    modes = [m for m in text.split(",") if m]
    unknown = sorted(set(modes) - set(MODES))
    if unknown or not modes:
        raise argparse.ArgumentTypeError(f"unknown launch mode(s) {', '.join(unknown) or text!r}; "
                                         f"choose from {','.join(MODES)}")
    return modes


def main(args: argparse.Namespace) -> int:
    import torch

    from distgan.bench.step import sample_batches

    fixed = ["log.progress_bar=false", "log.val_every_steps=0", "checkpoint.every_steps=0",
             "faults.watchdog_minutes=0", f"train.max_steps={args.warmup + args.steps + 1}"]
    cfg = load_config(args.config, [*args.overrides, *fixed])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.profile and (args.baseline != "reference" or device.type != "cpu"):
        print("distgan bench step: --profile needs --baseline reference on a CPU (on a GPU, host time "
              "measures launches, not kernels)", file=sys.stderr)
        return 2
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    audio_seconds = cfg.data.batch_size * cfg.data.segment_samples / cfg.audio.sample_rate
    print(f"distgan bench step: {args.config} on {where}; batch {cfg.data.batch_size} x "
          f"{cfg.data.segment_samples} samples, precision {cfg.train.precision}", flush=True)
    if args.under_load is not None:
        _print_under_load(args, fixed)
        return 0
    if args.traffic is not None:
        _print_traffic(args, cfg)
    batches = sample_batches(cfg, 4)
    if args.baseline == "reference":
        _print_reference(args, cfg, batches, audio_seconds)
    else:
        _print_plain(args, cfg, batches, device, audio_seconds)
    return 0


def _print_plain(args: argparse.Namespace, cfg, batches: list, device, audio_seconds: float) -> None:
    from distgan.bench.step import PHASES, bench_distgan, bench_plain

    rounds = f"{args.warmup} warm-up + {args.steps} measured steps"
    print(f"timing the plain loop ({rounds})...", flush=True)
    plain = bench_plain(cfg, args.steps, args.warmup, batches, device)
    print(f"timing distgan's Trainer ({rounds})...", flush=True)
    ours = bench_distgan(cfg, args.steps, args.warmup)
    print(f"median of {args.steps} steps after {args.warmup} warm-up")
    phases = [p for p in PHASES if p in ours]
    labels = {"data": "data", "g_forward": "G fwd", "d_update": "D upd", "g_update": "G upd", "ema": "EMA"}
    print(f"{'':<10}{'s/step':>9}" + "".join(f"{labels[p]:>9}" for p in phases) + f"{'other':>9}{'audio-s/s':>11}")
    other = ours["step"] - sum(ours[p] for p in phases)
    print(f"{'distgan':<10}{ours['step']:>9.4f}" + "".join(f"{ours[p]:>9.4f}" for p in phases)
          + f"{other:>9.4f}{audio_seconds / ours['step']:>11.2f}")
    print(f"{'plain':<10}{plain['step']:>9.4f}{'':>{9 * len(phases) + 9}}{audio_seconds / plain['step']:>11.2f}")
    ratio = ours["step"] / plain["step"]
    print(f"overhead: distgan / plain = {ratio:.3f}x ({(ratio - 1) * 100:+.1f}%)")
    if "ema" in ours:  # the plain loop keeps no average: its cost is part of the overhead
        print(f"the average of G's weights (train.ema_decay={cfg.train.ema_decay}): {ours['ema'] * 1e3:.2f} ms "
              f"a step, {ours['ema'] / ours['step'] * 100:.2f}% of distgan's step")


def _print_reference(args: argparse.Namespace, cfg, batches: list, audio_seconds: float) -> None:
    from distgan.bench.step import bench_against_reference

    print(f"timing the original step and distgan's Trainer.train_step: {args.warmup} warm-up steps each, then "
          f"{args.rounds} alternating rounds of {args.steps} steps...", flush=True)
    result = bench_against_reference(cfg, args.steps, args.warmup, args.rounds, batches, profile=args.profile)
    phases = [p for p in ("g_forward", "d_update", "g_update", "ema") if p in result["distgan"]]
    print(f"minimum (median) of {args.rounds * args.steps} steps per side; CPU s: this process's CPU seconds")
    print(f"{'':<11}{'s/step':>9}{'median':>9}{'CPU s':>9}{'audio-s/s':>11}{'peak MiB':>10}"
          + "".join(f"{p:>10}" for p in phases))
    for name in ("reference", "distgan"):
        row = result[name]
        peak = f"{row['peak_mib']:>10.0f}" if row["peak_mib"] is not None else f"{'-':>10}"
        print(f"{name:<11}{row['step']:>9.4f}{row['median']:>9.4f}{row['cpu_step']:>9.3f}"
              f"{audio_seconds / row['step']:>11.2f}{peak}" + "".join(f"{row[p]:>10.4f}" for p in phases if p in row))
    speedup = result["reference"]["step"] / result["distgan"]["step"]
    print(f"speed: distgan / reference = {speedup:.3f}x the reference's audio-seconds per second"
          f" (CPU seconds: {result['reference']['cpu_step'] / result['distgan']['cpu_step']:.3f}x)")
    if args.profile:
        _print_profiles(result)


def _print_profiles(result: dict) -> None:
    from distgan.bench.op_profile import CLASSES, matmul_rate

    classes = [*CLASSES, "other"]
    print("one more step per side under torch.profiler: each class's share of the operators' self time")
    print(f"{'':<11}{'op ms':>9}" + "".join(f"{name:>17}" for name in classes) + f"{'conv GFLOP/s':>14}")
    for name in ("reference", "distgan"):
        found = result[name]["profile"]
        print(f"{name:<11}{found.total_ms:>9.0f}" + "".join(f"{found.shares[c] * 100:>16.1f}%" for c in classes)
              + f"{found.conv_rate:>14.0f}")
    print(f"a 2048^3 fp32 matrix multiply on the same threads: {matmul_rate():.0f} GFLOP/s")
    for name in ("reference", "distgan"):
        print(f"slowest operators, {name}: " + ", ".join(f"{op} {ms:.0f} ms" for op, ms in result[name]["profile"].top))


def _print_traffic(args: argparse.Namespace, cfg) -> None:
    from distgan.bench.traffic import measure_traffic, traffic_table

    modes = args.traffic
    print(f"counting collective payloads per step, two CPU ranks per mode ({', '.join(modes)})...", flush=True)
    with tempfile.TemporaryDirectory(prefix="distgan-traffic-") as out:
        found = measure_traffic(args.config, args.overrides, modes, Path(out))
    params = found[modes[0]][0]["param_bytes_here"] if modes[0] == "ddp" else None
    print("bytes each rank hands to collectives per step, MiB (payloads; ring wire bytes: docs/benchmarks.md)"
          + (f"; G + D parameters: {params / 2**20:.2f} MiB" if params else ""))
    for line in traffic_table(found):
        print(line)


def _print_under_load(args: argparse.Namespace, fixed: list[str]) -> None:
    from distgan.bench.threads import compare

    print(f"Trainer.fit per thread setting, {args.rounds} alternating rounds of one process each "
          f"({args.warmup} warm-up + {args.steps} measured steps), {args.under_load} busy-loop processes "
          f"on {os.cpu_count()} cores...", flush=True)
    found = compare(str(args.config), [*args.overrides, *fixed], args.steps, args.warmup, args.rounds, args.under_load,
                    report=lambda line: print(line, flush=True))
    print(f"{'setting':<18}{'threads':>8}  {'wait policy':<24}{'s/step':>9}  every round's median")
    for name, row in found.items():
        rounds = " ".join(f"{s:.3f}" for s in row["steps"])
        print(f"{name:<18}{row['threads']:>8}  {row['wait_policy']:<24}{row['median']:>9.3f}  {rounds}")
    one, torch_default, ours = (found[n]["median"] for n in ("one thread", "torch defaults", "distgan defaults"))
    print(f"torch defaults / one thread = {torch_default / one:.2f}x the time per step")
    print(f"distgan defaults / one thread = {ours / one:.2f}x; torch defaults / distgan defaults = "
          f"{torch_default / ours:.2f}x")
