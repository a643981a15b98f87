"""HiFi-GAN (Kong et al. 2020): a mel spectrogram in, a waveform out, judged by MPD + MSD.

- ``config.py``: its ``model.generator`` section (V1's defaults) and layout checks;
- ``generator.py``: the generator (multi-receptive-field residual blocks) and its receptive field;
- ``parts.py``: what training and inference build (the shared discriminator sets, the vocoder
  objective ``distgan.families.vocoder``, the copy-synthesis validator);
- ``release.py``: jik876/hifi-gan's ``g_``/``do_`` files and ``config.json``;
- ``reference.py``: the original code, for the parity tests and ``bench step --baseline reference``.
"""

from distgan.families.hifigan.config import HiFiGANConfig, check_layout
from distgan.families.hifigan.release import HIFIGAN_RELEASE
from distgan.families.spec import FamilySpec

SPEC = FamilySpec(name="hifigan", config=HiFiGANConfig, check=check_layout, parts="distgan.families.hifigan.parts",
                  release_formats={"hifigan": HIFIGAN_RELEASE})
