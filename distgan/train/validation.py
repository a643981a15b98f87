"""Periodic listening and measuring: fixed validation clips through the current generator.

Every rank runs the generator on the same clips (under ZeRO-3 its forward is a collective);
rank 0 writes real and generated audio, their mel spectrograms as images, and ``val/mel_l1``.
The real clips' audio and images are written once, at the first validation.
"""

from __future__ import annotations

import torch

from distgan.config import Config
from distgan.train.engine import ModelEngine, ProcessInfo
from distgan.train.metrics import MetricLogger


class Validator:
    def __init__(self, cfg: Config, info: ProcessInfo, clips: list[dict],
                 mel_input: torch.nn.Module, mel_loss: torch.nn.Module) -> None:
        self.cfg = cfg
        self.info = info
        self.clips = clips
        self.mel_input = mel_input
        self.mel_loss = mel_loss
        self._wrote_real = False

    @torch.no_grad()
    def generate(self, generator: ModelEngine) -> list[torch.Tensor]:
        """Generated waveforms ``[T]`` (float32, CPU) for every clip."""
        out = []
        for clip in self.clips:
            wave = clip["audio"].to(self.info.device).unsqueeze(0)
            mel = self.mel_input(wave)
            with generator.autocast():
                fake = generator.module(mel.to(generator.input_dtype))
            out.append(fake.float().reshape(-1).cpu())
        return out

    def run(self, generator: ModelEngine, logger: MetricLogger, step: int) -> dict[str, float]:
        if not self.clips:
            return {}
        fakes = self.generate(generator)
        sample_rate = self.cfg.audio.sample_rate
        errors = []
        for i, (clip, fake) in enumerate(zip(self.clips, fakes, strict=True)):
            real = clip["audio"]
            real_mel = self.mel_loss(real.unsqueeze(0).to(self.info.device))[0].cpu()
            fake_mel = self.mel_loss(fake.unsqueeze(0).to(self.info.device))[0].cpu()
            errors.append(float((real_mel - fake_mel).abs().mean()))
            tag = f"val/{i}_{clip['key']}"
            if not self._wrote_real:
                logger.audio(f"{tag}/real", real, step, sample_rate)
                logger.image(f"{tag}/mel_real", self.mel_input(real.unsqueeze(0).to(self.info.device))[0], step)
            logger.audio(f"{tag}/generated", fake, step, sample_rate)
            logger.image(f"{tag}/mel_generated", self.mel_input(fake.unsqueeze(0).to(self.info.device))[0], step)
        self._wrote_real = True
        values = {"val/mel_l1": sum(errors) / len(errors)}
        logger.scalars(step, values)
        return values
