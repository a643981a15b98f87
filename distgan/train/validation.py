"""Periodic listening and measuring: fixed validation clips through the current generator.

Every rank runs the generator on the same clips (under ZeRO-3 its forward is a collective);
rank 0 writes real and generated audio, their mel spectrograms as images, ``val/mel_l1``, and
``val/<metric>`` (mean over the clips) for each of ``log.val_metrics``. Only rank 0 scores:
the other ranks go on and wait for it at the next collective. The real clips' audio and images
are written once, at the first validation.
"""

from __future__ import annotations

import time

import torch

from distgan.config import Config
from distgan.distributed import ProcessInfo
from distgan.evaluation.metrics import MIN_SCORED_SAMPLES, available_metrics, score, summarize
from distgan.train.engine import ModelEngine
from distgan.train.logger import MetricLogger


def scored_metrics(names: list[str], scores: bool) -> tuple[str, ...]:
    """The metrics of ``log.val_metrics`` that this rank computes (none unless ``scores``).

    The names were checked against ``METRICS`` with the config. ``mel_l1`` is left out because the
    validator always writes it. Metrics whose package is missing are dropped, with a message saying why.
    """
    if not scores:
        return ()
    wanted = [name for name in dict.fromkeys(names) if name != "mel_l1"]
    reasons = available_metrics(wanted)
    for name in wanted:
        if reasons[name]:
            print(f"[distgan] validation metric {name} is skipped: {reasons[name]}", flush=True)
    return tuple(name for name in wanted if not reasons[name])


class Validator:
    validates_at_start = False  # also before the first step of a new run (the noise family's baseline)

    def __init__(self, cfg: Config, info: ProcessInfo, clips: list[dict],
                 mel_input: torch.nn.Module, mel_loss: torch.nn.Module) -> None:
        self.cfg = cfg
        self.info = info
        self.clips = clips
        self.mel_input = mel_input
        self.mel_loss = mel_loss
        validates = bool(clips) and (cfg.log.val_every_steps > 0 or cfg.log.val_every_minutes > 0)
        self.metrics = scored_metrics(cfg.log.val_metrics, info.is_main and validates)
        self._wrote_real = False
        self._next_by_time: float | None = None  # the clock starts at the first step

    def clock_due(self) -> bool:
        """Whether this rank's clock says a validation is due (``log.val_every_minutes``, for a run
        bounded by time such as the demo, whose step rate depends on the machine). Ranks' clocks
        differ: the loop agrees this flag with the step's own (``skips.py``), no collective here."""
        minutes = self.cfg.log.val_every_minutes
        if minutes <= 0:
            return False
        if self._next_by_time is None:
            self._next_by_time = time.monotonic() + minutes * 60
        return time.monotonic() >= self._next_by_time

    def due(self, step: int, clock_due: bool = False) -> bool:
        """Whether to validate after ``step``: every ``log.val_every_steps`` steps, or when
        ``clock_due`` (``clock_due`` on any rank at this step, agreed); the clock restarts then."""
        log = self.cfg.log
        due = (bool(log.val_every_steps) and step % log.val_every_steps == 0) or clock_due
        if due and log.val_every_minutes > 0:
            self._next_by_time = time.monotonic() + log.val_every_minutes * 60
        return due

    @torch.no_grad()
    def generate(self, generator: ModelEngine) -> list[torch.Tensor]:
        """Generated waveforms ``[T]`` (float32, CPU) for every clip."""
        out = []
        for clip in self.clips:
            wave = clip["audio"].to(self.info.device).unsqueeze(0)
            fake = generator(self.mel_input(wave))
            out.append(fake.float().reshape(-1).cpu())
        return out

    def run(self, generator: ModelEngine, logger: MetricLogger, step: int) -> dict[str, float]:
        if not self.clips:
            return {}
        fakes = self.generate(generator)
        if not self.info.is_main:
            return {}
        sample_rate = self.cfg.audio.sample_rate
        errors = []
        for i, (clip, fake) in enumerate(zip(self.clips, fakes, strict=True)):
            real = clip["audio"]
            errors.append(self.mel_l1(real, fake))
            tag = f"val/{i}_{clip['key']}"
            if not self._wrote_real:
                logger.audio(f"{tag}/real", real, step, sample_rate)
                logger.image(f"{tag}/mel_real", self.mel_input(real.unsqueeze(0).to(self.info.device))[0], step)
            logger.audio(f"{tag}/generated", fake, step, sample_rate)
            logger.image(f"{tag}/mel_generated", self.mel_input(fake.unsqueeze(0).to(self.info.device))[0], step)
        self._wrote_real = True
        values = {"val/mel_l1": sum(errors) / len(errors)}
        values.update(self.quality(fakes))
        logger.scalars(step, values)
        return values

    def mel_l1(self, real: torch.Tensor, fake: torch.Tensor) -> float:
        """Mean absolute log-mel difference of two waveforms ``[T]``."""
        real_mel = self.mel_loss(real.unsqueeze(0).to(self.info.device))[0].cpu()
        fake_mel = self.mel_loss(fake.unsqueeze(0).to(self.info.device))[0].cpu()
        return float((real_mel - fake_mel).abs().mean())

    def quality(self, fakes: list[torch.Tensor]) -> dict[str, float]:
        """``val/<metric>``: the mean over the clips where the metric is defined."""
        if not self.metrics:
            return {}
        # A non-finite output (a diverging generator) cannot be scored; its mel_l1 already shows it.
        rows = [score(clip["audio"], fake, self.cfg.audio.sample_rate, self.cfg.audio, self.metrics)
                for clip, fake in zip(self.clips, fakes, strict=True)
                if len(fake) >= MIN_SCORED_SAMPLES and torch.isfinite(fake).all()]
        return {f"val/{name}": stats["mean"] for name, stats in summarize(rows).items() if stats["count"]}
