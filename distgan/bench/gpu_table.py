"""The one-GPU table of ``distgan bench gpu`` (``launch/gpu_bench.sh``): distgan against the original step.

Rows: HiFi-GAN V1 (batch 16 x 8192 samples) and BigVGAN-v2 (22 kHz, 112M parameters, batch
4 x 65536), each in fp32, bf16 and bf16 with ``perf.compile``; every row times the original
step (``distgan.bench.reference_step``) and ``Trainer.train_step`` in alternating rounds
(``distgan.bench.step.bench_against_reference``). The original code has no mixed precision: in
the bf16 rows it runs under bf16 autocast, and the "vs fp32 orig" column compares with its fp32
figure (what a user of the original code gets). The last column counts the calls that make the
host wait for the GPU in one step of each side (``distgan.bench.cuda_syncs``; distgan's step should
make one, ``distgan/train/skips.py``). Each row runs in its own process (a clean peak-memory count,
no compile caches carried over), and the whole table keeps to ``--budget`` seconds: a row that
would start after it is listed as skipped.

``--dry-run`` runs the same code on the CPU at tiny shapes (a HiFi-GAN with V1's discriminators
and a 2048-sample segment, the test-sized BigVGAN), in this process, with the ``eager`` compile
backend: it shows the script works, not how fast anything is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MODELS = {"hifigan": ("HiFi-GAN V1", "hifigan_v1.yaml", 16, 8192),
          "bigvgan": ("BigVGAN-v2", "bigvgan_v2_22khz_80band_256x.yaml", 4, 65536)}
VARIANTS = {"fp32": [], "bf16": ["train.precision=bf16"],
            "bf16+compile": ["train.precision=bf16", "perf.compile=true"]}
# CPU-sized stand-ins for --dry-run.
DRY = {"hifigan": ("hifigan_v1.yaml", 1, 2048, ["model.generator.upsample_initial_channel=16",
                                                 "model.generator.resblock_kernel_sizes=[3]",
                                                 "model.generator.resblock_dilation_sizes=[[1,3,5]]"]),
       "bigvgan": ("bigvgan_tiny.yaml", 1, 2048, [
           "model.generator.upsample_initial_channel=16", "model.generator.resblock_kernel_sizes=[3]",
           "model.generator.resblock_dilation_sizes=[[1,3]]", "model.discriminator.periods=[2]",
           "model.discriminator.mpd_channels=[1,4,16,32,32]", "model.discriminator.cqtd_hop_lengths=[256]",
           "model.discriminator.cqtd_n_octaves=[7]", "model.discriminator.cqtd_bins_per_octaves=[12]"])}
FIXED = ["log.progress_bar=false", "log.val_every_steps=0", "checkpoint.every_steps=0", "faults.watchdog_minutes=0",
         "data.num_workers=0"]


def run_row(config: Path, overrides: list[str], steps: int, warmup: int, rounds: int) -> dict[str, Any]:
    """One row: both sides' seconds per step, audio-seconds per second and peak GPU memory."""
    import torch

    from distgan.bench.step import bench_against_reference
    from distgan.config import load_config

    cfg = load_config(config, [*overrides, *FIXED])
    generator = torch.Generator().manual_seed(cfg.train.seed)
    batches = [0.5 * torch.rand(cfg.data.batch_size, cfg.data.segment_samples, generator=generator) - 0.25
               for _ in range(2)]
    result = bench_against_reference(cfg, steps, warmup, rounds, batches)
    audio = cfg.data.batch_size * cfg.data.segment_samples / cfg.audio.sample_rate
    for side in result.values():
        side["audio_s_per_s"] = audio / side["step"]
    return result


def _row_in_subprocess(config: Path, overrides: list[str], counts: tuple[int, int, int], timeout: float
                       ) -> dict[str, Any] | str:
    with tempfile.TemporaryDirectory(prefix="distgan-gpu-") as folder:
        out = Path(folder) / "row.json"
        command = [sys.executable, "-m", "distgan.bench.gpu_table", str(out), str(config),
                   *(str(n) for n in counts), *overrides]
        try:
            done = subprocess.run(command, cwd=REPO, timeout=timeout, capture_output=True, text=True)
        except subprocess.TimeoutExpired:
            return f"timed out after {timeout:.0f} s"
        if done.returncode != 0:
            return "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1][:80]
        return json.loads(out.read_text())


def _line(model: str, variant: str, row: dict[str, Any] | str, fp32_reference: float | None) -> str:
    if isinstance(row, str):
        return f"{model:<12}{variant:<14}{row}"
    ours, theirs = row["distgan"], row["reference"]
    peaks = [f"{s['peak_mib'] / 1024:.1f}" if s["peak_mib"] is not None else "-" for s in (theirs, ours)]
    versus_fp32 = f"{ours['audio_s_per_s'] / fp32_reference:.2f}x" if fp32_reference else "-"
    syncs = "-" if ours.get("cuda_syncs") is None else f"{theirs['cuda_syncs']}/{ours['cuda_syncs']}"
    return (f"{model:<12}{variant:<14}{theirs['audio_s_per_s']:>12.4g}{ours['audio_s_per_s']:>12.4g}"
            f"{ours['audio_s_per_s'] / theirs['audio_s_per_s']:>8.2f}x{peaks[0]:>10}{peaks[1]:>10}{versus_fp32:>13}"
            f"{syncs:>10}")


def print_table(models: list[str], variants: list[str], steps: int, warmup: int, rounds: int, budget: float,
                dry_run: bool = False) -> None:
    """The table, one row at a time as it is measured (module docstring)."""
    if dry_run:
        steps, warmup, rounds = 1, 0, 2
    deadline = time.monotonic() + budget
    print(f"{'model':<12}{'variant':<14}{'original':>12}{'distgan':>12}{'ratio':>9}{'orig GiB':>10}"
          f"{'ours GiB':>10}{'vs fp32 orig':>13}{'syncs':>10}   (audio-seconds per second; peak GPU memory; "
          "synchronising CUDA calls in one step, original/distgan)", flush=True)
    for key in models:
        name, recipe, batch, segment = MODELS[key]
        fp32_reference = None
        for variant in variants:
            overrides = [f"data.batch_size={batch}", f"data.segment_samples={segment}", *VARIANTS[variant]]
            left = deadline - time.monotonic()
            if dry_run:
                recipe, batch, segment, small = DRY[key]
                overrides = [*small, f"data.batch_size={batch}", f"data.segment_samples={segment}",
                             *VARIANTS[variant], "perf.compile_backend=eager"]
                row: dict[str, Any] | str = run_row(REPO / "configs" / recipe, overrides, steps, warmup, rounds)
            elif left < 20:
                row = "skipped: the time budget is spent"
            else:
                row = _row_in_subprocess(REPO / "configs" / recipe, overrides, (steps, warmup, rounds), left)
            if variant == "fp32" and not isinstance(row, str):
                fp32_reference = row["reference"]["audio_s_per_s"]
            print(_line(name, variant, row, fp32_reference), flush=True)


if __name__ == "__main__":  # one row, in its own process: python -m distgan.bench.gpu_table OUT CONFIG ...
    out, config, steps, warmup, rounds, *overrides = sys.argv[1:]
    Path(out).write_text(json.dumps(run_row(Path(config), overrides, int(steps), int(warmup), int(rounds))))
    sys.stdout.flush()
    os._exit(0)
