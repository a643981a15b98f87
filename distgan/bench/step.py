"""What one training step costs, and what distgan's machinery adds to it (``distgan bench step``).

Measurements in one process, on the same device, model, batch shape and precision:

- **distgan**: ``Trainer.fit`` itself, on the config's data stream, with logging, agreed
  non-finite checks and everything else the real loop does. The whole step and its phases
  (data wait, the shared generator forward, the D update, the G update) are timed through the
  trainer's ``phase_timer`` hook, so nothing is patched into the loop.
- **plain**: the same generator, discriminators, losses and AdamW in a bare PyTorch loop (no
  Accelerate, no logging, no checks) over batches already in memory, so it pays no data cost.
  It does the same arithmetic as distgan's step (real and generated audio through D in one
  batch in the D update; in the G update, D frozen, real audio without a graph and generated
  audio with one, ``families.objective.judge_generated``; the same AdamW kernel, ``perf.optimizer_impl``),
  so the ratio isolates the machinery.

The ratio of the two is distgan's overhead; data wait counts against distgan.

- **reference** (``--baseline reference``, ``bench_against_reference``): the original code's step
  (``distgan.bench.reference_step``: the original packages' models and the arithmetic of their
  train.py) against ``Trainer.train_step``, both on the same batches in memory, distgan's models
  given the original models' weights. The two alternate in rounds of ``steps`` steps, so that load
  from other processes falls on both; the minimum over the measured steps is the figure (the
  median is printed beside it). On a CPU shared with other work, wall time also measures the
  other work; the process's CPU seconds per step (all its threads) are printed too, as the
  steadier figure there. Each side runs under its own backend flags: the original's
  ``cudnn.benchmark`` and PyTorch's TF32 defaults, distgan's ``perf`` switches.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from distgan.config import Config
from distgan.distributed import ProcessInfo
from distgan.families import build_models, family_of, front_end
from distgan.losses.mel import MelSpectrogram
from distgan.train.engine import make_optimizer

PHASES = ("data", "g_forward", "d_update", "g_update", "ema")  # ema: with train.ema_decay only


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(run: Callable[[int], object], index: int, device: torch.device) -> float:
    return _timed_both(run, index, device)[0]


def _timed_both(run: Callable[[int], object], index: int, device: torch.device) -> tuple[float, float]:
    """Wall seconds, and this process's CPU seconds (all its threads), of ``run(index)``."""
    _sync(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    run(index)
    _sync(device)
    return time.perf_counter() - start, time.process_time() - cpu_start


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
    """Median seconds per step of ``Trainer.fit`` and of its phases that ran, after ``warmup`` steps.

    ``cfg`` runs ``warmup + steps + 1`` steps: the last one also writes the final checkpoint and
    is left out.
    """
    from distgan.train.trainer import Trainer

    with tempfile.TemporaryDirectory(prefix="distgan-bench-") as run_dir:
        clock = PhaseClock(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
        Trainer(cfg, Path(run_dir), phase_timer=clock).fit()
    return {name: statistics.median(clock.seconds[name][warmup: warmup + steps]) for name in ("step", *PHASES)
            if clock.seconds.get(name)}


def bench_plain(cfg: Config, steps: int, warmup: int, batches: list[torch.Tensor], device: torch.device
                ) -> dict[str, float]:
    """The same step written as a bare PyTorch loop, with the family's objective's arithmetic
    (G's input, the audio in G's output, D's and G's loss terms: ``families/objective.py``)."""
    torch.manual_seed(cfg.train.seed)
    generator, discriminator = (model.to(device) for model in build_models(cfg))
    og, od = (make_optimizer(m, o, cfg.perf.optimizer_impl)
              for m, o in ((generator, cfg.optim.generator), (discriminator, cfg.optim.discriminator)))
    mel_input = front_end(cfg.model.generator, cfg.audio).to(device)
    info = ProcessInfo(rank=0, world_size=1, local_rank=0, device=device, is_main=True)
    objective = family_of(cfg).load_parts().objective(cfg, mel_input, MelSpectrogram.for_loss(cfg.audio).to(device),
                                                      info)
    audio_of = getattr(objective, "generated_audio", lambda output: output)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg.train.precision]

    def autocast():
        return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)

    @contextlib.contextmanager
    def frozen() -> Iterator[torch.nn.Module]:
        discriminator.requires_grad_(False)
        yield discriminator
        discriminator.requires_grad_(True)

    times = []
    for i in range(warmup + steps):
        _sync(device)
        start = time.perf_counter()
        wave = batches[i % len(batches)].to(device, non_blocking=True)
        x = objective.generator_input(wave, i, 0, 0)
        n = wave.shape[0]
        with autocast():
            output = generator(*x) if isinstance(x, tuple) else generator(x)
            logits, _ = discriminator(torch.cat([wave.unsqueeze(1), audio_of(output).detach()]))
        _, d_loss = objective.discriminator_terms([logit[:n] for logit in logits], [logit[n:] for logit in logits])
        od.zero_grad()
        d_loss.backward()
        od.step()
        with autocast():
            _, g_loss = objective.generator_terms(wave, output, frozen)
        og.zero_grad()
        g_loss.backward()
        og.step()
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


@contextlib.contextmanager
def _backend_flags(cudnn_benchmark: bool, tf32: tuple[bool, bool]) -> Iterator[None]:
    """cuDNN autotuning and TF32 (convolutions, matmuls) for one side, restored after."""
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.benchmark = cudnn_benchmark
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _warm_up(run: Callable[[int], object], warmup: int, device: torch.device, models: list[torch.nn.Module]
             ) -> float | None:
    """``warmup`` unmeasured steps; the peak GPU memory of this side alone (MiB), None on CPU.

    Both sides' models share the GPU: the peak counts this side's parameters and what its steps
    added (optimizer state, gradients, activations, workspaces), not the other side's weights."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    for i in range(warmup):
        _timed(run, i, device)
    if device.type != "cuda":
        return None
    own = sum(p.numel() * p.element_size() for m in models for p in m.parameters())
    return (torch.cuda.max_memory_allocated(device) - before + own) / 2**20


def _summary(times: list[tuple[float, float]], peak: float | None) -> dict[str, float | None]:
    wall, cpu = [t[0] for t in times], [t[1] for t in times]
    return {"step": min(wall), "median": statistics.median(wall), "cpu_step": min(cpu), "peak_mib": peak}


def bench_against_reference(cfg: Config, steps: int, warmup: int, rounds: int, batches: list[torch.Tensor],
                            profile: bool = False) -> dict[str, dict]:
    """The original step and ``Trainer.train_step`` in alternating rounds (module docstring); with
    ``profile`` (CPU), then each side's operator profile (``op_profile.profile_step``) as ``"profile"``."""
    from distgan.bench.cuda_syncs import count_syncs
    from distgan.bench.op_profile import profile_step
    from distgan.bench.reference_step import (
        ReferenceStep,
        build_models,
        copy_weights_into,
        cudnn_benchmark,
        reference_hooks,
    )
    from distgan.train.trainer import Trainer

    reference_g, reference_d = build_models(cfg)  # refuses a config the original cannot build, before any set-up
    with tempfile.TemporaryDirectory(prefix="distgan-bench-") as run_dir:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        clock = PhaseClock(device) if device.type == "cpu" else None  # phase syncs would slow a GPU
        trainer = Trainer(cfg, Path(run_dir), phase_timer=clock or _no_phases)
        try:
            copy_weights_into(trainer.g.model, trainer.d.model, reference_g, reference_d)
            reference = (reference_hooks(cfg).step_class or ReferenceStep)(cfg, reference_g, reference_d, device)
            pinned = device.type == "cuda"  # as both loaders pin their batches on CUDA
            host = [b.pin_memory() if pinned else b for b in batches]
            prepared = [tuple(t.pin_memory() if pinned else t for t in reference.prepare(b)) for b in host]

            def ours(i: int) -> None:
                trainer.train_step([{"audio": host[i % len(host)]}])
                trainer.state.step += 1

            sides = {"reference": (lambda i: reference(prepared[i % len(prepared)]),
                                   (cudnn_benchmark(cfg), (True, False))),
                     "distgan": (ours, (cfg.perf.cudnn_benchmark, (cfg.perf.tensorfloat, cfg.perf.tensorfloat)))}
            models = {"reference": [reference.generator, *reference.discriminators],
                      "distgan": [trainer.g.model, trainer.d.model]}
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
            peaks = {}
            for name, (run, flags) in sides.items():
                with _backend_flags(*flags):
                    peaks[name] = _warm_up(run, warmup, device, models[name])
            for r in range(rounds):
                for name in (sides if r % 2 == 0 else reversed(sides)):
                    run, flags = sides[name]
                    with _backend_flags(*flags):
                        times[name] += [_timed_both(run, r * steps + i, device) for i in range(steps)]
            # One more step each, counting the GPU's stalls; with ``profile``, two more under the profilers.
            syncs = _each_side(sides, lambda run: count_syncs(run, rounds * steps, device))
            profiles = _each_side(sides, lambda run: profile_step(run, rounds * steps + 1)) if profile else {}
        finally:
            for part in (trainer.watchdog, trainer.logger, trainer.data):
                part.close()
            trainer.lock.release()
    result = {name: _summary(times[name], peaks[name]) | {"cuda_syncs": syncs[name], "profile": profiles.get(name)}
              for name in sides}
    if clock is not None:
        result["distgan"].update({phase: statistics.median(clock.seconds[phase][warmup:])
                                  for phase in PHASES if clock.seconds.get(phase)})
    return result


def _each_side(sides: dict[str, tuple[Callable[[int], object], tuple]], measure: Callable) -> dict[str, object]:
    """``measure(run)`` for each side, under that side's backend flags."""
    found = {}
    for name, (run, flags) in sides.items():
        with _backend_flags(*flags):
            found[name] = measure(run)
    return found


def _no_phases(phase: str) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()
