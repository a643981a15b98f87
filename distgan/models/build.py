"""The shared discriminator sets a config describes (``model.discriminator.kinds``), built in one place.

A family's generator, and its discriminator where it has its own, are built by its folder
(``distgan/families/<name>/parts.py``; ``distgan.families.build_models``); the mel-to-waveform
families compose these sets (``distgan.families.vocoder``).
"""

from __future__ import annotations

from distgan.config import DiscriminatorConfig
from distgan.models.discriminators import Discriminators


def build_discriminators(cfg: DiscriminatorConfig, sample_rate: int) -> Discriminators:
    """Every set of ``cfg.kinds`` as one module (one optimizer, one engine); ``sample_rate`` is the audio's."""
    return Discriminators(cfg, sample_rate=sample_rate)
