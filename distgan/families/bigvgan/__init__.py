"""BigVGAN v1 and v2 (NVIDIA): HiFi-GAN's layout with AMP blocks, judged by MPD + MRD (v1) or
MPD + CQT-D (v2), with a single- or multi-scale mel loss.

- ``config.py``: its ``model.generator`` section;
- ``generator.py``, ``amp.py``, ``activations.py``, ``filters.py``: the generator and its
  anti-aliased Snake activations; ``presets.py``: NVIDIA's published configurations;
- ``parts.py``: what training and inference build (the shared MPD, MRD and CQT-D sets of
  ``distgan.models``, the vocoder objective, the copy-synthesis validator);
- ``release.py``: NVIDIA's checkpoint files and ``config.json``;
- ``reference.py``: the original code, for the parity tests and ``bench step --baseline reference``.
"""

from distgan.families.bigvgan.config import BigVGANConfig
from distgan.families.bigvgan.release import BIGVGAN_RELEASE
from distgan.families.hifigan.config import check_layout
from distgan.families.spec import FamilySpec

SPEC = FamilySpec(name="bigvgan", config=BigVGANConfig, check=check_layout, parts="distgan.families.bigvgan.parts",
                  release_formats={"bigvgan": BIGVGAN_RELEASE})
