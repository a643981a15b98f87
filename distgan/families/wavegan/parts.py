"""WaveGAN's torch side: its BatchNorm generator and discriminator, the noise objective and validator."""

from __future__ import annotations

from distgan.config import AudioConfig, Config
from distgan.families.spec import FamilyParts
from distgan.families.wavegan.config import WaveGANConfig
from distgan.families.wavegan.models import WaveGANDiscriminator, WaveGANGenerator
from distgan.families.wavegan.objective import NoiseObjective


def build_generator(section: WaveGANConfig, audio: AudioConfig) -> WaveGANGenerator:
    """Noise ``[B, latent_dim]`` -> waveform ``[B, 1, section.output_samples()]``, freshly initialised."""
    return WaveGANGenerator(section)


def build_discriminator(cfg: Config) -> WaveGANDiscriminator:
    return WaveGANDiscriminator(cfg.model.generator)


def validator(*args, **kwargs):
    """Fixed noise through G, scored as distributions (training code, imported only when a run validates)."""
    from distgan.families.wavegan.validation import NoiseValidator

    return NoiseValidator(*args, **kwargs)


PARTS = FamilyParts(build_generator=build_generator, build_discriminator=build_discriminator,
                    objective=NoiseObjective, validator=validator)
