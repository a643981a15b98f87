"""What a GAN step trains, as a family declares it: G's input, D's loss terms and G's loss terms.

``distgan.train.step.GANStep`` does the updates (micro-batches, the frozen D, skipped updates,
warm-ups) and asks the family's objective (``FamilyParts.objective``) only for the arithmetic:

- ``generator_input(wave, step, rank, micro_batch)``: what G takes for the real batch ``wave``;
- ``discriminator_terms(real_logits, fake_logits)``: ``({"d/...": term}, total)``;
- ``generator_terms(wave, fake, frozen)``: ``({"g/...": term}, total)``; ``frozen`` is D's
  ``frozen`` context manager, or None while G trains without D (``train.mel_only_steps``).
- optionally ``generated_audio(output)``: the audio D judges in G's output, for a generator
  that returns more than audio (a codec: codes and VQ losses; ``generator_terms`` gets the whole
  output); without it G's output is the audio. A tuple from ``generator_input`` is G's
  positional arguments.
- ``audio_term_weights()``: ``{"g/...": weight}`` of the terms in ``generator_terms``' total that
  are functions of the generated audio alone (mel, adversarial, feature matching), as the total
  weighs them now (read after ``generator_terms``: a weight may change with the step), and
  ``unbalanced_total(terms)``: the rest of the total (a codec's commitment and codebook losses; 0
  where there is none). The loss balancer (``loss.balancer``, ``distgan.losses.balancer``)
  balances the first and backpropagates the second as it is.

Terms are keyed by the names the trainer logs (``logger.LOSS_KEYS``, plus the spec's
``extra_terms``), as descript-audio-codec keys its loss weights. ``AdversarialObjective`` holds the discriminator half every family here
shares (``loss.adversarial``); families subclass it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn.utils import parametrize

from distgan.config import Config
from distgan.losses import gan as losses

Terms = dict[str, torch.Tensor]


def judge_generated(frozen_d: Callable, real: torch.Tensor, fake: torch.Tensor):
    """The G update's calls through the frozen D; returns (fake_logits, real_feats, fake_feats).

    Only the generated audio needs a graph: D is frozen and the real audio's feature maps are
    targets, so a backward through one concatenated call also covers the real half, whose
    gradients are all zero (about half the G update's D backward). So two calls, real audio first
    and without a graph, then generated audio with one, both inside ``parametrize.cached()``: D's
    weight-norm and spectral-norm weights are computed once, at the first call, and reused by the
    second. That keeps what one call gave: one power iteration of spectral norm (it advances when
    its weight is computed in training mode) and the same normalised weights for both halves;
    and the second call does not pay for the weights again. Real first: under ZeRO-3 a graph-free
    forward after one whose backward is pending finds the gathered parameters still marked in
    use and fails. A BatchNorm D (the WaveGAN family) judged them apart anyway, and in its G
    update judges no real audio at all.
    """
    with parametrize.cached():
        with torch.no_grad():
            _, real_feats = frozen_d(real.unsqueeze(1))
        fake_logits, fake_feats = frozen_d(fake)
    return fake_logits, real_feats, fake_feats


class AdversarialObjective:
    """D learns ``loss.adversarial`` (lsgan, hinge or bce) on real against generated logits; G's
    adversarial term is its counterpart, or ``mse`` (``loss.generator_adversarial``)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.g_adversarial = cfg.loss.adversarial if cfg.loss.generator_adversarial == "same" else "mse"

    def audio_term_weights(self) -> dict[str, float]:
        """``{"g/...": weight}`` of the total's terms that are functions of the audio alone."""
        raise NotImplementedError(f"{type(self).__name__} does not say which of its terms loss.balancer may balance")

    def unbalanced_total(self, terms: Terms) -> torch.Tensor | float:
        """The total's other terms, backpropagated as they are under ``loss.balancer`` (none here)."""
        return 0.0

    def discriminator_terms(self, real_logits: list[torch.Tensor],
                            fake_logits: list[torch.Tensor]) -> tuple[Terms, torch.Tensor]:
        d_real, d_fake = losses.discriminator_adversarial_loss(real_logits, fake_logits, self.cfg.loss.adversarial)
        return {"d/real": d_real, "d/fake": d_fake}, d_real + d_fake
