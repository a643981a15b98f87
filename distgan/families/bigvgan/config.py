"""BigVGAN's ``model.generator`` section: HiFi-GAN's layout plus its activations and output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from distgan.families.hifigan.config import HiFiGANConfig

# Samples either side that one anti-aliased activation reads (``filters.py``: 12-tap up- and
# down-sampling filters give exactly +-5; tests/models/test_bigvgan.py measures it).
ANTI_ALIAS_REACH = 5


@dataclass
class BigVGANConfig(HiFiGANConfig):
    """BigVGAN v1 and v2 (Lee et al. 2023): HiFi-GAN's layout with anti-aliased periodic
    activations (AMP blocks); ``resblock`` picks AMPBlock1 or AMPBlock2."""

    activation_reach: ClassVar[int] = ANTI_ALIAS_REACH

    family: str = "bigvgan"
    # The periodic activation of the AMP blocks, its parameters stored as logarithms or not.
    activation: Literal["snake", "snakebeta"] = "snakebeta"
    snake_logscale: bool = True
    # v1 ends with tanh and a bias on the output conv; v2 clamps to [-1, 1] without a bias.
    use_tanh_at_final: bool = True
    use_bias_at_final: bool = True
