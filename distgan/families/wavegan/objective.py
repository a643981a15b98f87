"""WaveGAN's objective: G takes noise (drawn per step, rank and micro-batch) and learns from the
adversarial loss alone (``loss.adv_weight`` x ``g/adv``: no mel loss, no feature matching)."""

from __future__ import annotations

import torch

from distgan.config import Config
from distgan.distributed import ProcessInfo
from distgan.families.objective import AdversarialObjective, Terms
from distgan.families.wavegan.models import latent_noise
from distgan.losses import gan as losses


class NoiseObjective(AdversarialObjective):
    def __init__(self, cfg: Config, mel_input: torch.nn.Module, mel_loss: torch.nn.Module,
                 info: ProcessInfo) -> None:
        super().__init__(cfg)

    def generator_input(self, wave: torch.Tensor, step: int, rank: int, micro_batch: int) -> torch.Tensor:
        """Noise of the real batch's size, a pure function of the seed, step, rank and micro-batch."""
        key = (self.cfg.train.seed, step, rank, micro_batch)
        return latent_noise(wave.shape[0], self.cfg.model.generator.latent_dim, key).to(wave.device)

    def audio_term_weights(self) -> dict[str, float]:
        return {"g/adv": self.cfg.loss.adv_weight}

    def generator_terms(self, wave: torch.Tensor, fake: torch.Tensor, frozen) -> tuple[Terms, torch.Tensor]:
        """D (frozen) judges the generated audio alone: a BatchNorm D judges no real audio in G's update."""
        with frozen() as frozen_d:
            fake_logits, _ = frozen_d(fake)
        terms = {"g/adv": losses.generator_adversarial_loss(fake_logits, self.g_adversarial)}
        return terms, self.cfg.loss.adv_weight * terms["g/adv"]
