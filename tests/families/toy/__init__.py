"""A toy model family, defined outside ``distgan/`` as a user's own would be: proof that adding a
family touches no file of distgan's (``docs/families.md``).

Registered by naming this module in ``DISTGAN_FAMILIES`` (every process reads it, launched ranks
included): ``DISTGAN_FAMILIES=tests.families.toy distgan train --config tests/families/toy/toy.yaml``.
Its section, its two-layer convolutional generator and discriminator and its own objective (hinge
losses for D and G, L1 log-mel and waveform terms for G, the latter logged as ``g/wave``, a
term of its own) are in ``config.py`` and ``parts.py``.
"""

from distgan.families import FamilySpec
from tests.families.toy.config import ToyConfig, check

SPEC = FamilySpec(name="toy", config=ToyConfig, check=check, parts="tests.families.toy.parts", reads=frozenset(),
                  generator_input="mel spectrograms", offers=("synthesize",), extra_terms=("g/wave",))
