"""Plain ``nn.Module``s that model families share: the discriminator sets (MPD, MSD, MRD, CQT-D) and
their layers; nothing here knows about training or distribution. A family's own modules live in
its folder (``distgan/families/<name>/``)."""

from distgan.models.build import build_discriminators
from distgan.models.discriminators import (
    Discriminators,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    PeriodDiscriminator,
    ScaleDiscriminator,
)

__all__ = [
    "Discriminators",
    "MultiPeriodDiscriminator",
    "MultiScaleDiscriminator",
    "PeriodDiscriminator",
    "ScaleDiscriminator",
    "build_discriminators",
]
