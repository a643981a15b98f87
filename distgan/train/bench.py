"""``distgan bench step``: what one training step costs, and what distgan's machinery adds to it.

Two measurements in one process, on the same device, model, batch shape and precision:

- **distgan**: ``Trainer.fit`` itself, on the config's data stream, with logging, agreed
  non-finite checks and everything else the real loop does. Step boundaries are timed through
  the loop's own stop-request hook, so nothing is patched into the step; data wait, the shared
  generator forward, the D update and the G update are timed by wrapping those methods.
- **plain**: the same generator, discriminators, losses and AdamW in a bare PyTorch loop (no
  Accelerate, no logging, no checks) over batches already in memory, so it pays no data cost.
  It does the same arithmetic as distgan's step (real and generated audio through D in one
  batch, D frozen for the generator's backward), so the ratio isolates the machinery.

The ratio of the two is distgan's overhead; data wait counts against distgan.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from distgan import losses
from distgan.config import Config, load_config
from distgan.mel import MelSpectrogram
from distgan.models.discriminators import Discriminators
from distgan.models.generator import HiFiGANGenerator

PHASES = ("data", "g_forward", "d_update", "g_update")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable, device: torch.device, into: list[float]) -> Callable:
    def wrapper(*args, **kwargs):
        _sync(device)
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        _sync(device)
        into.append(time.perf_counter() - start)
        return out

    return wrapper


def bench_distgan(cfg: Config, steps: int, warmup: int) -> dict[str, float]:
    """Seconds per step of ``Trainer.fit`` and its phases, after ``warmup`` steps."""
    from distgan.train.trainer import Trainer

    with tempfile.TemporaryDirectory(prefix="distgan-bench-") as run_dir:
        trainer = Trainer(cfg, Path(run_dir))
        device = trainer.info.device
        phases: dict[str, list[float]] = {name: [] for name in PHASES}
        trainer.generate = _timed(trainer.generate, device, phases["g_forward"])
        trainer.d_update = _timed(trainer.d_update, device, phases["d_update"])
        trainer.g_update = _timed(trainer.g_update, device, phases["g_update"])
        batches = trainer._batches

        def timed_batches():
            iterator = batches()
            while True:
                start = time.perf_counter()
                batch = next(iterator)
                phases["data"].append(time.perf_counter() - start)
                yield batch

        trainer._batches = timed_batches
        boundaries: list[float] = []

        def boundary() -> bool:
            _sync(device)
            boundaries.append(time.perf_counter())
            return False

        trainer.stop_requested = boundary
        trainer.fit()
    step_times = [b - a for a, b in zip(boundaries[warmup:], boundaries[warmup + 1:], strict=False)]
    result = {"step": statistics.median(step_times)}
    for name, values in phases.items():
        result[name] = statistics.median(values[warmup + 1: warmup + 1 + len(step_times)])
    return result


def bench_plain(cfg: Config, steps: int, warmup: int, batches: list[torch.Tensor], device: torch.device
                ) -> dict[str, float]:
    """The same step written as a bare PyTorch loop."""
    torch.manual_seed(cfg.train.seed)
    generator = HiFiGANGenerator(cfg.model.generator, n_mels=cfg.audio.n_mels).to(device)
    discriminator = Discriminators(cfg.model.discriminator).to(device)
    og, od = (torch.optim.AdamW(m.parameters(), lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay)
              for m, o in ((generator, cfg.optim.generator), (discriminator, cfg.optim.discriminator)))
    mel_input, mel_loss = MelSpectrogram(cfg.audio).to(device), MelSpectrogram.for_loss(cfg.audio).to(device)
    dtype = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg.train.precision]
    kind, w = cfg.loss.adversarial, cfg.loss

    def autocast():
        return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)

    times = []
    for i in range(warmup + steps):
        _sync(device)
        start = time.perf_counter()
        wave = batches[i % len(batches)].to(device, non_blocking=True)
        real = wave.unsqueeze(1)
        n = real.shape[0]
        with autocast():
            fake = generator(mel_input(wave))
            logits, _ = discriminator(torch.cat([real, fake.detach()]))
        d_real, d_fake = losses.discriminator_adversarial_loss([x[:n] for x in logits], [x[n:] for x in logits], kind)
        od.zero_grad()
        (d_real + d_fake).backward()
        od.step()
        discriminator.requires_grad_(False)
        with autocast():
            logits, feats = discriminator(torch.cat([real, fake]))
        g_loss = (w.mel_weight * losses.mel_l1_loss(mel_loss(wave), mel_loss(fake.squeeze(1)))
                  + w.adv_weight * losses.generator_adversarial_loss([x[n:] for x in logits], kind)
                  + w.fm_weight * losses.feature_matching_loss([[f[:n] for f in fs] for fs in feats],
                                                               [[f[n:] for f in fs] for fs in feats]))
        og.zero_grad()
        g_loss.backward()
        og.step()
        discriminator.requires_grad_(True)
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return {"step": statistics.median(times)}


def _sample_batches(cfg: Config, count: int) -> list[torch.Tensor]:
    from distgan.data.shards import resolve_shards
    from distgan.data.stream import TrainStream
    from distgan.train.data import corpus_spec

    stream = TrainStream(resolve_shards(corpus_spec(cfg), "train"), sample_rate=cfg.audio.sample_rate,
                         segment_samples=cfg.data.segment_samples, batch_size=cfg.data.batch_size, rank=0,
                         world_size=1, seed=cfg.train.seed)
    out = []
    for batch in stream:
        if batch["audio"].shape[0] == cfg.data.batch_size:
            out.append(batch["audio"])
        if len(out) == count:
            break
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=20, help="measured steps (median reported)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")


def main(args: argparse.Namespace) -> int:
    fixed = ["log.progress_bar=false", "log.audio_every_steps=0", "checkpoint.every_steps=0",
             "faults.watchdog_minutes=0", f"train.max_steps={args.warmup + args.steps + 1}"]
    cfg = load_config(args.config, [*args.overrides, *fixed])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batches = _sample_batches(cfg, 4)
    plain = bench_plain(cfg, args.steps, args.warmup, batches, device)
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
