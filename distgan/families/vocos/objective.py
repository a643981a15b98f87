"""Vocos's objective: the arithmetic of ``vocos.experiment.VocosExp.training_step``.

With ``c`` = ``mrd_loss_coeff`` and each sum averaged over its sub-discriminators:

- D: ``hinge_mpd + c * hinge_mrd``, a hinge term ``mean(relu(1 - real)) + mean(relu(1 + fake))``
  per sub-discriminator (logged as ``d/real`` and ``d/fake``, each weighted the same way, and
  ``d/mrd``, MRD's unweighted part);
- G: ``adv_mpd + c * adv_mrd + fm_mpd + c * fm_mrd + mel_coeff * mel``, with the hinge
  ``mean(relu(1 - fake))``, feature matching as the sum over layers of ``mean(|real - fake|)``,
  and ``mel`` the L1 distance between ``safe_log`` mel magnitudes with center padding
  (``g/adv`` and ``g/fm`` hold the weighted sums, ``g/adv_mrd`` and ``g/fm_mrd`` MRD's parts);
  during ``train.mel_only_steps`` (vocos' ``pretrain_mel_steps``) the mel term alone.

``decay_mel_coeff`` scales ``mel_coeff`` at step ``k`` by ``0.5 * (1 + cos(pi * progress))``,
``progress = (k - warmup) / (max_steps - warmup)`` (1 during the warm-up), the cosine of the
learning-rate schedule, as VocosExp sets it after each batch for the next one. The mel loss uses
the run's ``audio`` STFT settings (vocos' uses 1024 / 256 / 100 mels, the official recipe's).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from distgan.config import Config
from distgan.families.objective import Terms, judge_generated
from distgan.families.vocos.modules import VocosMelFeatures

Logits = list[torch.Tensor]


def hinge_discriminator(real: Logits, fake: Logits) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over sub-discriminators of ``mean(relu(1 - r))`` and of ``mean(relu(1 + f))``."""
    return (sum(F.relu(1 - r).mean() for r in real) / len(real),
            sum(F.relu(1 + f).mean() for f in fake) / len(fake))


def hinge_generator(fake: Logits) -> torch.Tensor:
    return sum(F.relu(1 - f).mean() for f in fake) / len(fake)


def feature_matching(real_feats: list[Logits], fake_feats: list[Logits]) -> torch.Tensor:
    """Sum over layers of ``mean(|real - fake|)``, averaged over sub-discriminators."""
    total = sum(torch.mean(torch.abs(r - g)) for rs, gs in zip(real_feats, fake_feats, strict=True)
                for r, g in zip(rs, gs, strict=True))
    return total / len(real_feats)


def mel_coefficient_scale(step: int, warmup_steps: int, max_steps: int) -> float:
    """VocosExp's ``mel_loss_coeff_decay``: 1 in the warm-up, then a half cosine to 0 at ``max_steps``."""
    if step < warmup_steps:
        return 1.0
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


class VocosObjective:
    def __init__(self, cfg: Config, mel_input: torch.nn.Module, mel_loss: torch.nn.Module, info) -> None:
        self.cfg, self.section, self.mel_input = cfg, cfg.model.generator, mel_input
        audio = cfg.audio
        self.mel = VocosMelFeatures(audio.sample_rate, audio.n_fft, audio.hop_length, audio.n_mels,
                                    f_min=audio.fmin, f_max=audio.fmax).to(info.device)
        self.n_period = len(self.section.mpd_periods)
        self.step = 0  # the step ``generator_input`` was last asked for (the mel coefficient's decay)

    def generator_input(self, wave: torch.Tensor, step: int, rank: int, micro_batch: int) -> torch.Tensor:
        self.step = step
        return self.mel_input(wave)

    def mel_coefficient(self) -> float:
        if not self.section.decay_mel_coeff:
            return self.section.mel_loss_coeff
        scale = mel_coefficient_scale(self.step, self.cfg.optim.generator.warmup_steps, self.cfg.train.max_steps)
        return self.section.mel_loss_coeff * scale

    def audio_term_weights(self) -> dict[str, float]:
        """``g/adv`` and ``g/fm`` already hold MRD's weighted parts (``g/adv_mrd``, ``g/fm_mrd``: logged only)."""
        return {"g/mel": self.mel_coefficient(), "g/adv": 1.0, "g/fm": 1.0}

    def unbalanced_total(self, terms: Terms) -> float:
        return 0.0

    def discriminator_terms(self, real_logits: Logits, fake_logits: Logits) -> tuple[Terms, torch.Tensor]:
        n, c = self.n_period, self.section.mrd_loss_coeff
        mpd_real, mpd_fake = hinge_discriminator(real_logits[:n], fake_logits[:n])
        mrd_real, mrd_fake = hinge_discriminator(real_logits[n:], fake_logits[n:])
        terms = {"d/real": mpd_real + c * mrd_real, "d/fake": mpd_fake + c * mrd_fake, "d/mrd": mrd_real + mrd_fake}
        return terms, terms["d/real"] + terms["d/fake"]

    def generator_terms(self, wave: torch.Tensor, fake: torch.Tensor, frozen) -> tuple[Terms, torch.Tensor]:
        terms = {"g/mel": F.l1_loss(self.mel(wave), self.mel(fake))}
        total = self.mel_coefficient() * terms["g/mel"]
        if frozen is not None:
            n, c = self.n_period, self.section.mrd_loss_coeff
            with frozen() as frozen_d:
                fake_logits, real_feats, fake_feats = judge_generated(frozen_d, wave, fake)
            terms["g/adv_mrd"] = hinge_generator(fake_logits[n:])
            terms["g/fm_mrd"] = feature_matching(real_feats[n:], fake_feats[n:])
            terms["g/adv"] = hinge_generator(fake_logits[:n]) + c * terms["g/adv_mrd"]
            terms["g/fm"] = feature_matching(real_feats[:n], fake_feats[:n]) + c * terms["g/fm_mrd"]
            total = total + terms["g/adv"] + terms["g/fm"]
        return terms, total
