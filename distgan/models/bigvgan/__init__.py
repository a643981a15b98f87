"""BigVGAN (v1 and v2) as plain ``nn.Module``s: generator, AMP blocks, MRD and CQT discriminators.

The MPD is HiFi-GAN's (``distgan.models.discriminators.MultiPeriodDiscriminator``); the multi-scale
mel loss lives in ``distgan.multiscale_mel``; ``distgan.models.reference_weights`` loads NVIDIA's
checkpoints.
"""

from distgan.models.bigvgan.activations import Snake, SnakeBeta
from distgan.models.bigvgan.amp import AMPBlock1, AMPBlock2
from distgan.models.bigvgan.cqt import CQTDiscriminator, MultiScaleSubbandCQTDiscriminator
from distgan.models.bigvgan.filters import AntiAliasedActivation, kaiser_sinc_filter
from distgan.models.bigvgan.generator import BigVGANGenerator
from distgan.models.bigvgan.mrd import MultiResolutionDiscriminator, ResolutionDiscriminator
from distgan.models.bigvgan.presets import (
    CQT_PRESET,
    GENERATOR_PRESETS,
    MPD_PRESET,
    MRD_PRESET,
    SAMPLE_RATES,
    TRAINING_PRESETS,
)

__all__ = [
    "CQT_PRESET",
    "GENERATOR_PRESETS",
    "MPD_PRESET",
    "MRD_PRESET",
    "SAMPLE_RATES",
    "TRAINING_PRESETS",
    "AMPBlock1",
    "AMPBlock2",
    "AntiAliasedActivation",
    "BigVGANGenerator",
    "CQTDiscriminator",
    "MultiResolutionDiscriminator",
    "MultiScaleSubbandCQTDiscriminator",
    "ResolutionDiscriminator",
    "Snake",
    "SnakeBeta",
    "kaiser_sinc_filter",
]
