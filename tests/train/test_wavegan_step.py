"""One step of the WaveGAN family: D judges real and generated audio in separate calls (BatchNorm),
the vocoders' D in one, G learns from the adversarial loss alone, and both models' gradients are
clipped to ``optim.*.grad_clip``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from distgan.config import load_config
from distgan.train.trainer import Trainer
from tests.train.helpers import FAST, REPO_ROOT, TINY

WAVEGAN_TINY = REPO_ROOT / "configs" / "wavegan_tiny.yaml"


@pytest.fixture
def make_trainer(tmp_path: Path) -> Iterator:
    made: list[Trainer] = []

    def make(config: Path, *overrides: str) -> Trainer:
        made.append(Trainer(load_config(config, [*FAST, *overrides]), tmp_path / f"run{len(made)}"))
        return made[-1]

    yield make
    for trainer in made:
        trainer.watchdog.close()
        trainer.logger.close()


def d_batch_sizes(trainer: Trainer) -> list[int]:
    """The batch size of every D call during one training step."""
    sizes: list[int] = []
    hook = trainer.d.model.register_forward_pre_hook(lambda module, args: sizes.append(args[0].shape[0]))
    try:
        trainer.values = trainer.train_step([next(trainer._batches())])
    finally:
        hook.remove()
    return sizes


def test_batchnorm_discriminator_sees_real_and_generated_audio_apart(make_trainer, monkeypatch) -> None:
    trainer = make_trainer(WAVEGAN_TINY, "data.batch_size=3", "data.synthetic.utterances=8")
    clipped: list[float] = []
    clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda params, max_norm: clipped.append(max_norm)
                        or clip(params, max_norm))
    # D update: real, then generated; G update: generated only (no feature matching needs real audio).
    assert d_batch_sizes(trainer) == [3, 3, 3]
    assert clipped == [5.0, 5.0]  # D's update, then G's: configs/wavegan_tiny.yaml's grad_clip
    values = trainer.values
    assert {"d/real", "d/fake", "g/adv", "g/total"} <= set(values) and not {"g/mel", "g/fm"} & set(values)
    assert float(values["g/total"]) == pytest.approx(float(values["g/adv"]))  # loss.adv_weight 1
    assert 0 < float(values["g/adv"]) < 1  # (1 - probability)^2


def test_vocoder_discriminator_sees_both_in_one_batch(make_trainer) -> None:
    trainer = make_trainer(TINY)
    # FAST's batch of 2. D update: real and generated concatenated; G update: generated (with a
    # graph), then real (the feature-matching targets, without one): test_step_work.py.
    assert d_batch_sizes(trainer) == [4, 2, 2]
