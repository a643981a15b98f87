"""``distgan bench precision --config C``: are bf16 (or fp16) losses within the seed-to-seed noise of
fp32 over a short run? (``distgan.bench.precision`` says how, and what "within noise" means.)"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

from distgan.config import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="recipe to train, e.g. configs/hifigan_v1.yaml")
    parser.add_argument("--steps", type=_positive, default=40, help="training steps per run (default: %(default)s)")
    parser.add_argument("--seeds", type=_positive, default=3,
                        help="fp32 runs, seeds train.seed, train.seed+1, ...; their spread is the noise "
                             "(at least 2; default: %(default)s)")
    parser.add_argument("--precisions", nargs="+", choices=["bf16", "fp16"], default=["bf16"],
                        help="lower precisions to judge, each one run with the first seed (default: bf16)")
    parser.add_argument("--window", type=_positive,
                        help="steps at the end of each run whose losses are averaged (default: the last quarter)")
    parser.add_argument("--budget", type=float,
                        help="seconds for all runs: a run that would end after it is skipped (default: no limit)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write every run's per-step losses and step times here")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(args: argparse.Namespace) -> int:
    if args.seeds < 2:
        raise SystemExit("distgan bench precision: --seeds must be at least 2 (the fp32 spread is the noise)")
    window = args.window or max(1, args.steps // 4)
    if window > args.steps:
        raise SystemExit(f"distgan bench precision: --window {window} is longer than --steps {args.steps}")
    import torch

    from distgan.bench.precision import PrecisionRun, check_precisions, measure, run_config, to_json
    from distgan.bench.precision_table import table

    cfg = load_config(args.config, args.overrides)  # a bad override fails here, before any run
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    check_precisions(args.precisions, device.type)
    seeds = [cfg.train.seed + i for i in range(args.seeds)]
    print(f"distgan bench precision: {args.config} on {_machine(device)}, torch {torch.__version__}; "
          f"batch {cfg.data.batch_size} x {cfg.data.segment_samples} samples at {cfg.audio.sample_rate} Hz, "
          f"{args.steps} steps per run; fp32 seeds {', '.join(map(str, seeds))}; "
          f"{', '.join(args.precisions)} seed {seeds[0]}", flush=True)
    found = measure(lambda precision, seed: run_config(args.config, args.overrides, precision, seed, args.steps),
                    args.precisions, seeds, args.budget, report=lambda line: print(line, flush=True))
    runs = [r for r in found if isinstance(r, PrecisionRun)]
    if runs:
        sizes = ", ".join(f"{name} {count / 1e6:.2f}M" for name, count in runs[0].parameters.items())
        print(f"parameters: {sizes}")
        for line in table(runs, window):
            print(line)
    for skipped in (r for r in found if isinstance(r, str)):
        print(skipped)
    if args.json is not None:
        args.json.write_text(to_json(runs))
    return 0


def _machine(device) -> str:
    import torch

    threads = torch.get_num_threads()
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({threads} CPU threads)"
    return f"cpu {_cpu_model()} ({threads} threads)"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
