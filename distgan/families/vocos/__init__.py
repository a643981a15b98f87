"""Vocos (Siuzdak 2023): a ConvNeXt backbone at the frame rate and an inverse-STFT head, judged by
MPD + MRD with hinge losses, feature matching and an L1 log-mel loss.

- ``config.py``: its ``model.generator`` section (the official mel recipe's defaults) and checks;
- ``modules.py``: its mel features (the family's front end), the backbone, the ISTFT head;
- ``discriminators.py``: its MPD and MRD (where they differ from ``distgan.models``' is said there);
- ``objective.py``: ``VocosExp.training_step``'s arithmetic;
- ``parts.py``: what training and inference build;
- ``release.py``: its release folder (``config.yaml`` + ``pytorch_model.bin``), in and out;
- ``reference.py``: the ``vocos`` package (parity extra), for the parity tests only.
"""

from distgan.families.spec import FamilySpec
from distgan.families.vocos.config import VocosConfig, check
from distgan.families.vocos.release import VOCOS_RELEASE

SPEC = FamilySpec(name="vocos", config=VocosConfig, check=check, parts="distgan.families.vocos.parts",
                  reads=frozenset({"train.mel_only_steps", "log.val_metrics"}),
                  extra_terms=("g/adv_mrd", "g/fm_mrd", "d/mrd"), release_formats={"vocos": VOCOS_RELEASE})
