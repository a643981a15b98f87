"""DAC's objective: the arithmetic of ``scripts/train.py``'s ``train_loop``.

- G takes the clip itself, ``[B, 1, T]``, and per clip how many codebooks count
  (``quantizer_dropout``: the first ``int(B * share)`` clips of each micro-batch a random count in
  ``1..n_codebooks``, drawn from the run's seed, step, rank and micro-batch, so every rank draws
  its own, a resumed run draws the same again, and nothing depends on the global RNG; DAC draws
  ``torch.randint(1, n + 1, (B,))`` from the global RNG inside the quantizer).
- D: least squares, ``sum_d mean(D_d(fake)^2) + mean((1 - D_d(real))^2)`` over every
  sub-discriminator (``d/fake``, ``d/real``).
- G: ``loss.mel_weight`` x ``g/mel`` (the multi-scale mel loss, 15) + ``loss.adv_weight`` x
  ``g/adv`` (``sum_d mean((1 - D_d(fake))^2)``, 1) + ``loss.fm_weight`` x ``g/fm`` (L1 between
  real and generated feature maps, every map but the logits, 2) + ``commitment_weight`` x
  ``g/commitment`` (0.25) + ``codebook_weight`` x ``g/codebook`` (1). DAC's logged-only
  ``stft/loss`` and ``waveform/loss`` (not in its total) are left out.
"""

from __future__ import annotations

import hashlib

import torch

from distgan.config import Config
from distgan.distributed import ProcessInfo
from distgan.families.dac.codec import CodecOutput
from distgan.families.objective import AdversarialObjective, Terms, judge_generated
from distgan.losses import gan as losses
from distgan.losses.mel_loss import build_mel_loss


def codebook_counts(batch: int, n_codebooks: int, share: float, key: tuple) -> torch.Tensor:
    """Codebooks that count per clip ``[batch]`` (int64): ``n_codebooks + 1`` (all) but for the
    first ``int(batch * share)`` clips, which get a draw from ``1..n_codebooks``; a pure function of ``key``."""
    digest = hashlib.blake2b(repr(tuple(key)).encode(), digest_size=8).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
    counts = torch.full((batch,), n_codebooks + 1, dtype=torch.long)
    dropped = int(batch * share)
    counts[:dropped] = torch.randint(1, n_codebooks + 1, (batch,), generator=generator)[:dropped]
    return counts


class CodecObjective(AdversarialObjective):
    def __init__(self, cfg: Config, mel_input: torch.nn.Module, mel_loss: torch.nn.Module,
                 info: ProcessInfo) -> None:
        super().__init__(cfg)
        self.section = cfg.model.generator
        self.mel_criterion = build_mel_loss(cfg, mel_loss).to(info.device)

    def generator_input(self, wave: torch.Tensor, step: int, rank: int,
                        micro_batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = self.section
        counts = codebook_counts(wave.shape[0], g.n_codebooks, g.quantizer_dropout,
                                 (self.cfg.train.seed, "quantizer_dropout", step, rank, micro_batch))
        return wave.unsqueeze(1), counts.to(wave.device)

    def generated_audio(self, output: CodecOutput) -> torch.Tensor:
        return output.audio

    def audio_term_weights(self) -> dict[str, float]:
        loss = self.cfg.loss
        return {"g/mel": loss.mel_weight, "g/adv": loss.adv_weight, "g/fm": loss.fm_weight}

    def unbalanced_total(self, terms: Terms) -> torch.Tensor:
        """The quantizer's losses: functions of the encoder's latents, not of the decoded audio."""
        g = self.section
        return g.commitment_weight * terms["g/commitment"] + g.codebook_weight * terms["g/codebook"]

    def generator_terms(self, wave: torch.Tensor, output: CodecOutput, frozen) -> tuple[Terms, torch.Tensor]:
        weights, g = self.cfg.loss, self.section
        fake = output.audio
        terms = {"g/mel": self.mel_criterion(fake, wave), "g/commitment": output.commitment_loss,
                 "g/codebook": output.codebook_loss}
        total = (weights.mel_weight * terms["g/mel"] + g.commitment_weight * terms["g/commitment"]
                 + g.codebook_weight * terms["g/codebook"])
        if frozen is not None:
            with frozen() as frozen_d:
                fake_logits, real_feats, fake_feats = judge_generated(frozen_d, wave, fake)
            terms["g/adv"] = losses.generator_adversarial_loss(fake_logits, self.g_adversarial)
            terms["g/fm"] = losses.feature_matching_loss([maps[:-1] for maps in real_feats],
                                                         [maps[:-1] for maps in fake_feats])
            total = total + weights.adv_weight * terms["g/adv"] + weights.fm_weight * terms["g/fm"]
        return terms, total
