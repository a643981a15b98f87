"""DAC-class neural audio codecs (Kumar et al. 2023, descript-audio-codec): a generator whose
input is the waveform itself, encoded to residual-VQ codes and decoded back.

- ``config.py``: its ``model.generator`` section (the official 44.1 kHz model's defaults) and checks;
- ``codec.py``: encoder, decoder and the codec module (``encode``/``decode`` for inference);
- ``quantize.py``: the factorised, L2-normalised residual vector quantizer;
- ``discriminator.py``: MPD + the multi-band STFT discriminator on peak-normalised clips;
- ``objective.py``: ``scripts/train.py``'s arithmetic, quantizer dropout drawn per step and rank;
- ``validation.py``: mel distance, SI-SDR, codebook usage and bitrate at full and reduced counts;
- ``parts.py``: what training builds;
- ``release.py``: DAC's ``.pth`` release file (``dac.DAC.load``), in and out.
"""

from distgan.families.dac.config import DACConfig, check
from distgan.families.dac.release import DAC_RELEASE
from distgan.families.spec import FamilySpec

SPEC = FamilySpec(name="dac", config=DACConfig, check=check, parts="distgan.families.dac.parts",
                  reads=frozenset({"loss.fm_weight", "loss.mel_weight", "loss.mel", "loss.multiscale_mel",
                                   "train.mel_only_steps", "log.val_metrics"}),
                  generator_input="audio (a codec)", offers=("encode", "decode"),
                  extra_terms=("g/commitment", "g/codebook"), release_formats={"dac": DAC_RELEASE})
