"""EnCodec-class neural audio codecs (Défossez et al. 2022, ``encodec``): a SEANet encoder, a
residual VQ trained at several target bandwidths, a SEANet decoder, judged by the multi-scale STFT
discriminator.

- ``config.py``: its ``model.generator`` section (the 24 kHz model's defaults) and checks;
- ``conv.py``, ``seanet.py``: the streamable convolutions and LSTM, SEANet's encoder and decoder;
- ``quantize.py``: the residual VQ, EnCodec's EMA codebooks or DAC's factorised ones;
- ``codec.py``: the codec module, bandwidths and codebook counts (``encode``/``decode`` for inference);
- ``frequency.py``, ``objective.py``: the paper's losses, one bandwidth drawn per step for every rank;
- ``validation.py``: DAC's codec validator at every target bandwidth, in eval mode;
- ``release.py``: Meta's published ``.th`` state dict (``train.init_from``, ``export --format encodec``);
- ``parts.py``: what training builds (D: ``model.discriminator``, kind ``msstftd``).

The codec's state-dict keys are ``encodec``'s (``EncodecModel.state_dict()`` loads as it is with
the ``ema`` quantizer, which adds a ``steps`` buffer per codebook; ``tests/models/test_encodec_parity.py``).
"""

from distgan.families.encodec.config import EncodecConfig, check
from distgan.families.encodec.release import ENCODEC_RELEASE
from distgan.families.spec import FamilySpec

SPEC = FamilySpec(name="encodec", config=EncodecConfig, check=check, parts="distgan.families.encodec.parts",
                  reads=frozenset({"model.discriminator", "loss.fm_weight", "loss.mel_weight", "train.mel_only_steps",
                                   "log.val_metrics"}),
                  generator_input="audio (a codec)", offers=("encode", "decode"),
                  extra_terms=("g/time", "g/commitment"), release_formats={"encodec": ENCODEC_RELEASE})
