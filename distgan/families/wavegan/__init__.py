"""The noise-to-waveform GAN with BatchNorm (WaveGAN, Donahue et al. 2019), where audio GANs began.

- ``config.py``: its ``model.generator`` section (G's and D's shapes) and checks;
- ``models.py``: generator and discriminator (BatchNorm; D judges real and generated apart);
- ``objective.py``: noise in, the adversarial loss alone;
- ``validation.py``: fixed noise through G, scored as distributions (no clip has a counterpart);
- ``parts.py``: the above, for training and ``distgan sample``.
"""

from distgan.families.spec import FamilySpec
from distgan.families.wavegan.config import WaveGANConfig, check, refusal

SPEC = FamilySpec(name="wavegan", config=WaveGANConfig, check=check, parts="distgan.families.wavegan.parts",
                  reads=frozenset({"log.val_generated_clips", "dist.batchnorm"}), generator_input="noise",
                  offers=("sample",), refusal=refusal)
