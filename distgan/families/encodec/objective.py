"""EnCodec's objective (Défossez et al. 2022, section 3.4).

- G takes the clip ``[B, 1, T]`` and the number of codebooks of one target bandwidth, drawn
  uniformly from ``target_bandwidths`` once per micro-batch, as EnCodec trains. The draw is keyed
  by the run's seed, the step and the micro-batch and NOT the rank: the EMA codebooks average their
  updates over ranks layer by layer (``distgan.models.ema_quantize``), so every rank must run the
  same layers at every step, or the collectives go out of step. The same key draws the same again
  after a resume, and nothing reads the global RNG.
- D: hinge, ``1/K sum_k mean(relu(1 - D_k(x))) + mean(relu(1 + D_k(x_hat)))`` over the ``K``
  sub-discriminators (``d/real``, ``d/fake``): the paper averages where distgan's shared losses sum.
- G: ``time_weight`` x ``g/time`` (L1 on the waveform, lambda_t 0.1) + ``loss.mel_weight`` x
  ``g/mel`` (the frequency loss, ``frequency.py``, lambda_f 1) + ``loss.adv_weight`` x ``g/adv``
  (``1/K sum_k mean(relu(1 - D_k(x_hat)))``, lambda_g 3) + ``loss.fm_weight`` x ``g/fm`` (relative
  feature matching, ``1/(KL) sum_{k,l} mean|D_k^l(x) - D_k^l(x_hat)| / mean|D_k^l(x)|``,
  lambda_feat 3) + ``commitment_weight`` x ``g/commitment`` (lambda_w 1). With the factorised
  quantizer its codebook loss joins the total (``codebook_weight``); it is not logged apart, as its
  value is the commitment loss's (the same squared distance, the gradient through the other side).

``audio_term_weights()`` names the terms that are functions of the generated audio alone, with
their weights: what EnCodec's loss balancer (``loss.balancer``) rescales; the commitment term is a
penalty on the encoder, outside it (``unbalanced_total``). The discriminator updates every step (the paper's 24 kHz model skips a third
of them at random; ``train.d_steps_per_g`` is distgan's nearest).
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F

from distgan.config import Config
from distgan.distributed import ProcessInfo
from distgan.families.dac.codec import CodecOutput
from distgan.families.encodec.frequency import EncodecFrequencyLoss
from distgan.families.objective import AdversarialObjective, Terms, judge_generated
from distgan.losses import gan as losses

FEATURE_FLOOR = 1e-8  # keeps the relative feature distance finite on an all-zero real map


def bandwidth_index(n_bandwidths: int, key: tuple) -> int:
    """A uniform draw from ``0 .. n_bandwidths - 1``, a pure function of ``key``."""
    digest = hashlib.blake2b(repr(tuple(key)).encode(), digest_size=8).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
    return int(torch.randint(n_bandwidths, (1,), generator=generator))


def relative_feature_matching(real_feats: list[list[torch.Tensor]], fake_feats: list[list[torch.Tensor]]) -> torch.Tensor:
    """Mean over sub-discriminators and layers of ``mean|real - fake| / mean|real|`` (real detached)."""
    terms = [(r.detach().float() - f.float()).abs().mean() / r.detach().float().abs().mean().clamp_min(FEATURE_FLOOR)
             for real_maps, fake_maps in zip(real_feats, fake_feats, strict=True)
             for r, f in zip(real_maps, fake_maps, strict=True)]
    return torch.stack(terms).mean()


class EncodecObjective(AdversarialObjective):
    def __init__(self, cfg: Config, mel_input: torch.nn.Module, mel_loss: torch.nn.Module,
                 info: ProcessInfo) -> None:
        super().__init__(cfg)
        self.section = g = cfg.model.generator
        self.codebooks = g.bandwidth_codebooks(cfg.audio.sample_rate)  # per target bandwidth
        self.frequency = EncodecFrequencyLoss(cfg.audio.sample_rate, g.freq_windows, g.freq_n_mels, g.freq_fmin,
                                              g.freq_floor).to(info.device)

    def audio_term_weights(self) -> dict[str, float]:
        """The weight of every G term that is a function of the generated audio alone."""
        loss = self.cfg.loss
        return {"g/time": self.section.time_weight, "g/mel": loss.mel_weight, "g/adv": loss.adv_weight,
                "g/fm": loss.fm_weight}

    def generator_input(self, wave: torch.Tensor, step: int, rank: int,
                        micro_batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The clip and one bandwidth's codebook count (a CPU scalar: reading it costs no device sync
        unless an engine moves it). ``rank`` is left out of the draw on purpose (module docstring)."""
        index = bandwidth_index(len(self.codebooks), (self.cfg.train.seed, "bandwidth", step, micro_batch))
        return wave.unsqueeze(1), torch.tensor(self.codebooks[index])

    def generated_audio(self, output: CodecOutput) -> torch.Tensor:
        return output.audio

    def discriminator_terms(self, real_logits: list[torch.Tensor],
                            fake_logits: list[torch.Tensor]) -> tuple[Terms, torch.Tensor]:
        d_real, d_fake = losses.discriminator_adversarial_loss(real_logits, fake_logits, "hinge")
        d_real, d_fake = d_real / len(real_logits), d_fake / len(fake_logits)
        return {"d/real": d_real, "d/fake": d_fake}, d_real + d_fake

    def generator_terms(self, wave: torch.Tensor, output: CodecOutput, frozen) -> tuple[Terms, torch.Tensor]:
        g, weights = self.section, self.audio_term_weights()
        fake, real = output.audio, wave.unsqueeze(1)
        terms = {"g/time": F.l1_loss(fake.float(), real.float()), "g/mel": self.frequency(fake, real),
                 "g/commitment": output.commitment_loss}
        if frozen is not None:
            with frozen() as frozen_d:
                fake_logits, real_feats, fake_feats = judge_generated(frozen_d, wave, fake)
            terms["g/adv"] = torch.stack([F.relu(1 - logits.float()).mean() for logits in fake_logits]).mean()
            terms["g/fm"] = relative_feature_matching(real_feats, fake_feats)
        self._quantizer_total = g.commitment_weight * terms["g/commitment"]
        if g.quantizer == "factorized":
            self._quantizer_total = self._quantizer_total + g.codebook_weight * output.codebook_loss
        total = sum(weights[name] * terms[name] for name in weights if name in terms) + self._quantizer_total
        return terms, total

    def unbalanced_total(self, terms: Terms) -> torch.Tensor:
        """The quantizer's penalties of the last ``generator_terms`` (commitment, and the factorised
        quantizer's codebook loss, which ``terms`` does not hold apart): outside the balancer."""
        return self._quantizer_total
