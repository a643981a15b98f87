"""What the models are trained against, and the mel front end it is measured with, in one place.

- ``mel.py``: the log-mel front end (a mel family's generator input, validation, the mel loss);
- ``mel_loss.py``: ``g/mel`` as ``loss.mel`` configures it (single- or multi-scale);
- ``multiscale_mel.py``: BigVGAN v2's multi-scale mel loss;
- ``gan.py``: adversarial (lsgan, hinge, bce) and feature-matching losses;
- ``balancer.py``: EnCodec's loss balancer (``loss.balancer``), which the training step applies.

Families compose these in their objectives (``distgan/families/*/``).
"""

from distgan.losses.gan import (
    discriminator_adversarial_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    mel_l1_loss,
)

__all__ = ["discriminator_adversarial_loss", "feature_matching_loss", "generator_adversarial_loss", "mel_l1_loss"]
