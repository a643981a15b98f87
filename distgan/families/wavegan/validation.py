"""Validation of the noise-to-waveform family (``wavegan``): fixed noise through the generator.

A generated clip has no real counterpart, so nothing is scored clip by clip. At each validation
(and once before the first step, to give the curves their starting point) every rank runs the
generator on the same ``log.val_generated_clips`` noise vectors, as one batch (under ZeRO-3
gathering its weights is a collective, and synchronised BatchNorm all-reduces). BatchNorm uses
that batch's statistics, as in training, and the running estimates are restored afterwards:
before the first step they are BatchNorm's initial zeros and ones, not the network's, so eval
mode would measure an arbitrary generator there; once training has run for a few dozen steps
(1 / momentum) the two agree, and ``distgan sample`` uses the running estimates. Rank 0 writes
the first ``log.val_clips`` as audio with their mel images, and scores the whole set against the
held-out real clips, cut into pieces of the generator's length:

- ``val/frechet_mel``: Fréchet distance between Gaussian fits of real and generated log-mel
  frames (a proxy for Fréchet Audio Distance, not FAD: ``distgan.evaluation.distribution``);
- ``val/pairwise_distance_ratio``: mean pairwise distance between generated clips' log-mel
  summaries over that between real pieces' (towards 0: mode collapse).
"""

from __future__ import annotations

import numpy as np
import torch

from distgan.config import Config
from distgan.distributed import ProcessInfo
from distgan.evaluation.distribution import clip_features, frechet_mel, pairwise_distance_ratio
from distgan.families.wavegan.models import latent_noise
from distgan.train.engine import ModelEngine
from distgan.train.logger import MetricLogger
from distgan.train.validation import Validator


class NoiseValidator(Validator):
    def __init__(self, cfg: Config, info: ProcessInfo, clips: list[dict], mel_input: torch.nn.Module,
                 mel_loss: torch.nn.Module | None = None) -> None:
        super().__init__(cfg, info, clips, mel_input, mel_input)  # no mel loss: nothing is compared clip by clip
        self.metrics = ()  # copy-synthesis metrics need a real counterpart per clip (checks.py refuses them)
        self.validates_at_start = cfg.log.val_every_steps > 0 or cfg.log.val_every_minutes > 0
        wavegan = cfg.model.generator
        self.noise = latent_noise(cfg.log.val_generated_clips, wavegan.latent_dim, ("validation", cfg.train.seed))
        length = wavegan.output_samples()
        self.real = [clip["audio"][i:i + length] for clip in clips for i in range(0, len(clip["audio"]) - length + 1,
                                                                                   length)]
        self._real_mels: list[np.ndarray] | None = None  # computed at the first validation, on rank 0

    @torch.no_grad()
    def generate(self, generator: ModelEngine) -> list[torch.Tensor]:
        """Generated waveforms ``[T]`` (float32, CPU) for every fixed noise vector: G as it trains,
        BatchNorm on the statistics of these vectors, its running estimates left as they were."""
        out = []
        with generator.full_parameters() as model:
            kept = {name: buffer.clone() for name, buffer in model.named_buffers()}
            was_training = model.training
            model.train()
            try:
                dtype = next(model.parameters()).dtype
                out.extend(model(self.noise.to(self.info.device, dtype)).float().reshape(len(self.noise), -1).cpu())
            finally:
                model.train(was_training)
                for name, buffer in model.named_buffers():
                    buffer.copy_(kept[name])
        return out

    def _log_mel(self, wave: torch.Tensor) -> np.ndarray:
        """``[n_mels, frames]`` log-mel of one clip, float64."""
        return self.mel_input(wave.unsqueeze(0).to(self.info.device))[0].double().cpu().numpy()

    def run(self, generator: ModelEngine, logger: MetricLogger, step: int) -> dict[str, float]:
        fakes = self.generate(generator)
        if not self.info.is_main:
            return {}
        sample_rate = self.cfg.audio.sample_rate
        if not self._wrote_real:
            for i, real in enumerate(self.real[: self.cfg.log.val_clips]):
                logger.audio(f"val/real_{i}", real, step, sample_rate)
                logger.image(f"val/real_{i}/mel", self.mel_input(real.unsqueeze(0).to(self.info.device))[0], step)
            self._wrote_real = True
        for i, fake in enumerate(fakes[: self.cfg.log.val_clips]):
            logger.audio(f"val/generated_{i}", fake, step, sample_rate)
            logger.image(f"val/generated_{i}/mel", self.mel_input(fake.unsqueeze(0).to(self.info.device))[0], step)
        values = self.distribution_scores(fakes)
        logger.scalars(step, values)
        return values

    def distribution_scores(self, fakes: list[torch.Tensor]) -> dict[str, float]:
        """``val/frechet_mel`` and ``val/pairwise_distance_ratio`` (empty without two real pieces or
        with non-finite generated audio, which cannot be scored)."""
        if len(self.real) < 2 or not all(torch.isfinite(fake).all() for fake in fakes):
            return {}
        if self._real_mels is None:
            self._real_mels = [self._log_mel(real) for real in self.real]
        fake_mels = [self._log_mel(fake) for fake in fakes]
        frames = [np.concatenate([m.T for m in mels]) for mels in (self._real_mels, fake_mels)]
        features = [np.stack([clip_features(m) for m in mels]) for mels in (self._real_mels, fake_mels)]
        return {"val/frechet_mel": frechet_mel(*frames), "val/pairwise_distance_ratio": pairwise_distance_ratio(*features)}
