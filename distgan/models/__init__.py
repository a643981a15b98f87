"""Plain ``nn.Module``s of the HiFi-GAN family; nothing here knows about training or distribution."""

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
    "input_frame_span",
    "receptive_field",
]
