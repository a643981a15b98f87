"""The pieces mel-to-waveform families share (HiFi-GAN, BigVGAN): G takes the run's log-mel, D is
``model.discriminator``'s sets, G learns the mel loss plus the adversarial and feature-matching
losses, and validation scores copy-synthesis (``distgan.train.validation.Validator``).

``VocoderObjective`` is HiFi-GAN's objective (Kong et al. 2020): ``loss.mel_weight`` x ``g/mel``
(single- or multi-scale, ``distgan.losses.mel_loss``) + ``loss.adv_weight`` x ``g/adv`` +
``loss.fm_weight`` x ``g/fm``; in the mel-only warm-up the mel term alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from distgan.config import Config
from distgan.families.objective import AdversarialObjective, Terms, judge_generated
from distgan.losses import gan as losses
from distgan.losses.mel_loss import build_mel_loss
from distgan.models.build import build_discriminators

if TYPE_CHECKING:
    from distgan.distributed import ProcessInfo


class VocoderObjective(AdversarialObjective):
    def __init__(self, cfg: Config, mel_input: torch.nn.Module, mel_loss: torch.nn.Module,
                 info: ProcessInfo) -> None:
        super().__init__(cfg)
        self.mel_input = mel_input
        # g/mel: (fake, real) waveforms -> scalar; the single-scale loss reuses ``mel_loss``.
        self.mel_criterion = build_mel_loss(cfg, mel_loss).to(info.device)

    def generator_input(self, wave: torch.Tensor, step: int, rank: int, micro_batch: int) -> torch.Tensor:
        return self.mel_input(wave)

    def audio_term_weights(self) -> dict[str, float]:
        loss = self.cfg.loss
        return {"g/mel": loss.mel_weight, "g/adv": loss.adv_weight, "g/fm": loss.fm_weight}

    def generator_terms(self, wave: torch.Tensor, fake: torch.Tensor, frozen) -> tuple[Terms, torch.Tensor]:
        weights = self.cfg.loss
        terms = {"g/mel": self.mel_criterion(fake, wave)}
        if frozen is not None:
            with frozen() as frozen_d:
                fake_logits, real_feats, fake_feats = judge_generated(frozen_d, wave, fake)
            terms["g/adv"] = losses.generator_adversarial_loss(fake_logits, self.g_adversarial)
            terms["g/fm"] = losses.feature_matching_loss(real_feats, fake_feats)
        total = weights.mel_weight * terms["g/mel"]
        if frozen is not None:
            total = total + weights.adv_weight * terms["g/adv"] + weights.fm_weight * terms["g/fm"]
        return terms, total


def validator(*args, **kwargs):
    """The copy-synthesis validator (training code, imported only when a run validates)."""
    from distgan.train.validation import Validator

    return Validator(*args, **kwargs)


def build_discriminator(cfg: Config) -> torch.nn.Module:
    """``model.discriminator``'s sets as one module (one optimizer, one engine)."""
    return build_discriminators(cfg.model.discriminator, cfg.audio.sample_rate)
