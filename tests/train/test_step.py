"""One GAN step: what it logs with gradient accumulation, the learning rate it trains at, the warm-up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from distgan.config import load_config
from distgan.losses import gan as losses
from distgan.train.trainer import Trainer
from tests.train.helpers import FAST, TINY, local_logs, run_distgan, train_args


@pytest.fixture
def make_trainer(tmp_path: Path) -> Iterator:
    made: list[Trainer] = []

    def make(*overrides: str) -> Trainer:
        made.append(Trainer(load_config(TINY, [*FAST, *overrides]), tmp_path / f"run{len(made)}"))
        return made[-1]

    yield make
    for trainer in made:
        trainer.watchdog.close()
        trainer.logger.close()


def test_logged_losses_are_the_means_over_micro_batches(make_trainer, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = make_trainer("train.grad_accum=2")
    seen: dict[str, list[float]] = {"g/mel": [], "d/real": [], "d/fake": []}
    mel_l1, adversarial = losses.mel_l1_loss, losses.discriminator_adversarial_loss

    def spy_mel_l1(*args):
        loss = mel_l1(*args)
        seen["g/mel"].append(float(loss.detach()))
        return loss

    def spy_adversarial(*args):
        real, fake = adversarial(*args)
        seen["d/real"].append(float(real.detach()))
        seen["d/fake"].append(float(fake.detach()))
        return real, fake

    monkeypatch.setattr(losses, "mel_l1_loss", spy_mel_l1)
    monkeypatch.setattr(losses, "discriminator_adversarial_loss", spy_adversarial)
    batches = trainer._batches()
    values = trainer.train_step([next(batches), next(batches)])
    for name, per_batch in seen.items():
        assert len(per_batch) == 2 and per_batch[0] != pytest.approx(per_batch[1])
        assert float(values[name]) == pytest.approx(sum(per_batch) / 2, rel=1e-6), name


def test_mel_only_warm_up_with_one_batch_per_step(make_trainer) -> None:
    trainer = make_trainer("train.mel_only_steps=1")
    batches = trainer._batches()
    first = trainer.train_step([next(batches)])  # step 0: G alone, on the mel loss
    assert "g/mel" in first and "g/adv" not in first and "d/total" not in first
    trainer.state.step += 1
    second = trainer.train_step([next(batches)])
    assert {"g/mel", "g/adv", "g/fm", "d/total"} <= set(second)


def test_learning_rate_decays_once_per_epoch_with_gradient_accumulation(tmp_path: Path) -> None:
    # The synthetic corpus gives 22 batches of 2 an epoch: with 2 batches a step, 11 steps.
    run_distgan(train_args(tmp_path, "train.max_steps=24", "train.grad_accum=2", "optim.generator.lr_decay=0.5",
                           "log.every_steps=1"))
    lr = {row["step"]: row["lr/g"] for row in local_logs(tmp_path)}
    base = load_config(TINY).optim.generator.lr
    # Logged step s trained at 0-based step s - 1, after (s - 1) * 2 batches.
    assert lr[11] == pytest.approx(base)
    assert lr[12] == pytest.approx(base * 0.5)   # after one epoch
    assert lr[23] == pytest.approx(base * 0.25)  # after two epochs
    state = torch.load(sorted((tmp_path / "checkpoints").glob("step-*"))[-1] / "trainer.pt", weights_only=False)
    assert state["state"]["epoch"] == 2
