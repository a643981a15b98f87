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


def test_cosine_schedule_is_transformers_cosine_with_warmup_after_its_warmup() -> None:
    from torch import nn
    from torch import optim as torch_optim
    from transformers import get_cosine_schedule_with_warmup

    optim = OptimizerConfig(lr=5e-4, schedule="cosine", warmup_steps=10)
    opt = torch_optim.AdamW(nn.Linear(1, 1).parameters(), lr=5e-4)
    reference = get_cosine_schedule_with_warmup(opt, num_warmup_steps=10, num_training_steps=100)
    for step in range(100):
        if step >= 10:  # distgan's warm-up is (step + 1) / warmup_steps, transformers' step / warmup_steps
            assert learning_rate(optim, step, 1, max_steps=100) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        reference.step()
    assert learning_rate(optim, 0, 1, max_steps=100) == pytest.approx(5e-4 / 10)
    assert learning_rate(optim, 55, 1, max_steps=100) == pytest.approx(2.5e-4)
    assert learning_rate(optim, 100, 1, max_steps=100) == 0.0
