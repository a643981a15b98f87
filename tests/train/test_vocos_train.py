"""configs/vocos_tiny.yaml learns in one process: the mel loss and D's loss fall, ``val/mel_l1``
improves (read from the event file), and the checkpoint loads as a Vocos vocoder.

The launch modes (DDP, ZeRO-2, resume bit for bit) are ``tests/train/test_family_launch.py``'s row.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from distgan.families.vocos.modules import VocosGenerator
from distgan.inference.load import load_generator
from tests.train.helpers import REPO_ROOT, run_distgan, scalars, train_args

VOCOS_TINY = REPO_ROOT / "configs" / "vocos_tiny.yaml"


@pytest.mark.slow
def test_tiny_vocos_learns(tmp_path: Path) -> None:
    run_distgan(train_args(tmp_path, "train.max_steps=30", "log.val_every_steps=10", "log.every_steps=1",
                           "optim.generator.lr=1.0e-3", "optim.discriminator.lr=1.0e-3", config=VOCOS_TINY))
    values = scalars(tmp_path)

    def mean(tag: str, steps: range) -> float:
        return sum(values[tag][step] for step in steps) / len(steps)

    assert mean("g/mel", range(26, 31)) < 0.8 * mean("g/mel", range(1, 6))
    assert mean("d/total", range(26, 31)) < mean("d/total", range(1, 6))
    assert values["val/mel_l1"][30] < 0.9 * values["val/mel_l1"][10]
    # The cosine schedule: lr falls from 1e-3 towards 0 at step 30.
    assert values["lr/g"][1] == pytest.approx(1e-3) and values["lr/g"][30] < 1e-5
    vocoder = load_generator(tmp_path)
    assert isinstance(vocoder.generator, VocosGenerator)
    assert vocoder(torch.zeros(1, 100, 5)).shape == (1, 4 * 256)  # center padding: (frames - 1) * hop
