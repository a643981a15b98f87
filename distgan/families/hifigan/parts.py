"""HiFi-GAN's torch side: its generator, the shared MPD + MSD sets, the vocoder objective."""

from __future__ import annotations

from distgan.config import AudioConfig
from distgan.families.hifigan.config import HiFiGANConfig
from distgan.families.hifigan.generator import HiFiGANGenerator, receptive_field
from distgan.families.hifigan.reference import REFERENCE
from distgan.families.spec import FamilyParts
from distgan.families.vocoder import VocoderObjective, build_discriminator, validator


def build_generator(section: HiFiGANConfig, audio: AudioConfig) -> HiFiGANGenerator:
    """Log-mel ``[B, n_mels, frames]`` -> waveform ``[B, 1, frames * hop]``, freshly initialised."""
    return HiFiGANGenerator(section, n_mels=audio.n_mels)


PARTS = FamilyParts(build_generator=build_generator, build_discriminator=build_discriminator,
                    objective=VocoderObjective, validator=validator, receptive_field=receptive_field,
                    reference=REFERENCE)
