"""Plain ``nn.Module``s of the HiFi-GAN and BigVGAN families; nothing here knows about training or
distribution. ``build.py`` builds the ones a config describes."""

from distgan.models.build import build_discriminators, build_generator
from distgan.models.discriminators import (
    Discriminators,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    PeriodDiscriminator,
    ScaleDiscriminator,
)
from distgan.models.generator import GENERATOR_PRESETS, HiFiGANGenerator, input_frame_span, receptive_field

__all__ = [
    "GENERATOR_PRESETS",
    "Discriminators",
    "HiFiGANGenerator",
    "MultiPeriodDiscriminator",
    "MultiScaleDiscriminator",
    "PeriodDiscriminator",
    "ScaleDiscriminator",
    "build_discriminators",
    "build_generator",
    "input_frame_span",
    "receptive_field",
]
