"""What one training step costs, and what distgan's machinery adds to it (``distgan bench step``).

Two measurements in one process, on the same device, model, batch shape and precision:

- **distgan**: ``Trainer.fit`` itself, on the config's data stream, with logging, agreed
  non-finite checks and everything else the real loop does. The whole step and its phases
  (data wait, the shared generator forward, the D update, the G update) are timed through the
  trainer's ``phase_timer`` hook, so nothing is patched into the loop.
- **plain**: the same generator, discriminators, losses and AdamW in a bare PyTorch loop (no
  Accelerate, no logging, no checks) over batches already in memory, so it pays no data cost.
  It does the same arithmetic as distgan's step (real and generated audio through D in one
  batch, D frozen for the generator's backward), so the ratio isolates the machinery.

The ratio of the two is distgan's overhead; data wait counts against distgan.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import torch

from distgan import losses
from distgan.config import Config
from distgan.mel import MelSpectrogram
from distgan.mel_loss import build_mel_loss
from distgan.models.build import build_discriminators, build_generator

PHASES = ("data", "g_forward", "d_update", "g_update")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PhaseClock:
    """The trainer's ``phase_timer``: the seconds each phase took, in the order they ran."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, list[float]] = defaultdict(list)

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        _sync(self.device)
        start = time.perf_counter()
        yield
        _sync(self.device)
        self.seconds[phase].append(time.perf_counter() - start)


def bench_distgan(cfg: Config, steps: int, warmup: int) -> dict[str, float]:
    """Median seconds per step of ``Trainer.fit`` and of its phases, after ``warmup`` steps.

    ``cfg`` runs ``warmup + steps + 1`` steps: the last one also writes the final checkpoint and
    is left out.
    """
    from distgan.train.trainer import Trainer

    with tempfile.TemporaryDirectory(prefix="distgan-bench-") as run_dir:
        clock = PhaseClock(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
        Trainer(cfg, Path(run_dir), phase_timer=clock).fit()
    return {name: statistics.median(clock.seconds[name][warmup: warmup + steps]) for name in ("step", *PHASES)}


def bench_plain(cfg: Config, steps: int, warmup: int, batches: list[torch.Tensor], device: torch.device
                ) -> dict[str, float]:
    """The same step written as a bare PyTorch loop."""
    torch.manual_seed(cfg.train.seed)
    generator = build_generator(cfg.model.generator, cfg.audio.n_mels).to(device)
    discriminator = build_discriminators(cfg.model.discriminator, cfg.audio.sample_rate).to(device)
    og, od = (torch.optim.AdamW(m.parameters(), lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay)
              for m, o in ((generator, cfg.optim.generator), (discriminator, cfg.optim.discriminator)))
    mel_input, mel_loss = MelSpectrogram(cfg.audio).to(device), build_mel_loss(cfg).to(device)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg.train.precision]
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
        g_loss = (w.mel_weight * mel_loss(fake, wave)
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


def sample_batches(cfg: Config, count: int) -> list[torch.Tensor]:
    from distgan.data.shards import resolve_shards
    from distgan.data.stream import TrainStream
    from distgan.train.corpus import corpus_spec

    stream = TrainStream(resolve_shards(corpus_spec(cfg), "train", cfg.data.allow_index_pipes), sample_rate=cfg.audio.sample_rate,
                         segment_samples=cfg.data.segment_samples, batch_size=cfg.data.batch_size, rank=0,
                         world_size=1, seed=cfg.train.seed)
    out = []
    for batch in stream:
        if batch["audio"].shape[0] == cfg.data.batch_size:
            out.append(batch["audio"])
        if len(out) == count:
            break
    return out
