"""The learning rate is a pure function of the step (per-epoch decay as in HiFi-GAN)."""

from __future__ import annotations

import pytest

from distgan.config import OptimizerConfig
from distgan.train.schedule import learning_rate


def test_decay_per_epoch_steps_once_per_epoch() -> None:
    optim = OptimizerConfig(lr=2e-4, lr_decay=0.999, lr_decay_every="epoch")
    assert learning_rate(optim, 0, batches_per_epoch=10) == 2e-4
    assert learning_rate(optim, 9, batches_per_epoch=10) == 2e-4
    assert learning_rate(optim, 10, batches_per_epoch=10) == pytest.approx(2e-4 * 0.999)
    assert learning_rate(optim, 35, batches_per_epoch=10) == pytest.approx(2e-4 * 0.999**3)


def test_decay_per_step_and_warmup() -> None:
    optim = OptimizerConfig(lr=1e-3, lr_decay=0.5, lr_decay_every="step", warmup_steps=4)
    assert learning_rate(optim, 0, 100) == pytest.approx(1e-3 * 0.25)
    assert learning_rate(optim, 3, 100) == pytest.approx(1e-3 * 0.5**3)
    assert learning_rate(optim, 5, 100) == pytest.approx(1e-3 * 0.5**5)


def test_with_gradient_accumulation_an_epoch_is_fewer_steps() -> None:
    optim = OptimizerConfig(lr=1.0, lr_decay=0.5, lr_decay_every="epoch")
    # 10 batches an epoch, 2 a step: the decay comes after 5 steps, not 10.
    assert learning_rate(optim, 4, batches_per_epoch=10, batches_per_step=2) == 1.0
    assert learning_rate(optim, 5, batches_per_epoch=10, batches_per_step=2) == 0.5
    assert learning_rate(optim, 10, batches_per_epoch=10, batches_per_step=2) == 0.25
