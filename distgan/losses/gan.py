"""GAN vocoder losses as pure functions over the outputs of ``Discriminators``.

``logits`` are lists with one ``[B, N_i]`` tensor per sub-discriminator; ``features`` are lists
with one list of feature maps per sub-discriminator. As in HiFi-GAN, every loss is the sum over
sub-discriminators (and, for feature matching, layers) of a per-tensor mean, so each
sub-discriminator weighs the same whatever its output size. Loss weights (HiFi-GAN: adversarial 1,
feature matching 2, mel 45) live in ``LossConfig``, not here. Everything is computed in float32:
under bf16 a sum of squared logits would round away the small differences that drive training.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

ADVERSARIAL_KINDS = ("lsgan", "hinge", "bce")
# G's side may also be "mse": (1 - sigmoid(f))^2, against a D trained with bce (loss.generator_adversarial).
GENERATOR_KINDS = (*ADVERSARIAL_KINDS, "mse")


def _total(terms: list[torch.Tensor]) -> torch.Tensor:
    """Sum of per-discriminator scalars, on their device (an empty list is a caller's bug)."""
    if not terms:
        raise ValueError("no discriminator outputs to compute a loss from")
    return torch.stack(terms).sum()


def _check_kind(kind: str) -> None:
    if kind not in ADVERSARIAL_KINDS:
        raise ValueError(f"unknown adversarial loss {kind!r}; expected one of {list(ADVERSARIAL_KINDS)}")


def _real_term(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """Discriminator loss on real audio for one sub-discriminator: low when logits are high."""
    if kind == "lsgan":
        return (1.0 - logits).square().mean()
    if kind == "hinge":
        return F.relu(1.0 - logits).mean()
    return F.softplus(-logits).mean()  # = BCE-with-logits against target 1


def _fake_term(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """Discriminator loss on generated audio for one sub-discriminator: low when logits are low."""
    if kind == "lsgan":
        return logits.square().mean()
    if kind == "hinge":
        return F.relu(1.0 + logits).mean()
    return F.softplus(logits).mean()  # = BCE-with-logits against target 0


def discriminator_adversarial_loss(
    real_logits: Sequence[torch.Tensor], fake_logits: Sequence[torch.Tensor], kind: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """D's loss as ``(on real, on fake)`` scalars, kept apart so they can be logged apart.

    lsgan: ``(1 - r)^2`` and ``f^2``; hinge: ``relu(1 - r)`` and ``relu(1 + f)``; bce: binary
    cross-entropy with logits against 1 and 0. Each is averaged per sub-discriminator, then summed.
    """
    _check_kind(kind)
    if len(real_logits) != len(fake_logits):
        raise ValueError(f"{len(real_logits)} real but {len(fake_logits)} fake logit tensors")
    real = _total([_real_term(r.float(), kind) for r in real_logits])
    fake = _total([_fake_term(f.float(), kind) for f in fake_logits])
    return real, fake


def generator_adversarial_loss(fake_logits: Sequence[torch.Tensor], kind: str) -> torch.Tensor:
    """G's adversarial loss, a scalar: lsgan ``(1 - f)^2``, hinge ``-f``, bce non-saturating ``BCE(f, 1)``,
    mse ``(1 - sigmoid(f))^2`` (D's probability against the real label)."""
    if kind not in GENERATOR_KINDS:
        raise ValueError(f"unknown generator adversarial loss {kind!r}; expected one of {list(GENERATOR_KINDS)}")
    terms = []
    for logits in fake_logits:
        logits = logits.float()
        if kind == "lsgan":
            terms.append((1.0 - logits).square().mean())
        elif kind == "hinge":
            terms.append(-logits.mean())
        elif kind == "mse":
            terms.append((1.0 - torch.sigmoid(logits)).square().mean())
        else:
            terms.append(F.softplus(-logits).mean())
    return _total(terms)


def feature_matching_loss(
    real_features: Sequence[Sequence[torch.Tensor]], fake_features: Sequence[Sequence[torch.Tensor]]
) -> torch.Tensor:
    """Sum over sub-discriminators and layers of ``mean |real - fake|``, a scalar.

    Real features are detached here: the loss pulls G's features towards the real ones, and must
    not move (or build a graph through) D's activations on real audio.
    """
    if len(real_features) != len(fake_features):
        raise ValueError(f"{len(real_features)} real but {len(fake_features)} fake feature lists")
    terms = []
    for real_maps, fake_maps in zip(real_features, fake_features, strict=True):
        if len(real_maps) != len(fake_maps):
            raise ValueError(f"{len(real_maps)} real but {len(fake_maps)} fake feature maps")
        terms.extend((real.detach().float() - fake.float()).abs().mean()
                     for real, fake in zip(real_maps, fake_maps, strict=True))
    return _total(terms)


def mel_l1_loss(real_mel: torch.Tensor, fake_mel: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of two log-mels ``[B, n_mels, frames]``, a scalar."""
    return F.l1_loss(fake_mel.float(), real_mel.float())
