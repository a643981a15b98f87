"""The loss balancer (``loss.balancer``) in G's update (``step.py``): the surrogate carries what
each family's objective adds up, and balanced runs train, log each term's scale and keep their
averages across a checkpoint, in one process and under DeepSpeed ZeRO-2 and ZeRO-3."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from distgan.config import load_config
from distgan.train.trainer import Trainer
from tests.train.helpers import (
    FAST,
    LAUNCH,
    REPO_ROOT,
    TINY,
    checkpoints,
    local_logs,
    run_distgan,
    train_args,
)

# One tiny recipe per family objective (hifigan and bigvgan share the vocoder objective).
RECIPES = ["tiny.yaml", "bigvgan_tiny.yaml", "vocos_tiny.yaml", "dac_tiny.yaml", "encodec_tiny.yaml", "wavegan_tiny.yaml"]
BALANCED = ["loss.balancer.enabled=true", "loss.balancer.ema_decay=0.9"]


@pytest.fixture
def make_trainer(tmp_path: Path) -> Iterator:
    made: list[Trainer] = []

    def make(*overrides: str, config: Path = TINY, run: str | None = None) -> Trainer:
        made.append(Trainer(load_config(config, [*FAST, *overrides]), tmp_path / (run or f"run{len(made)}")))
        return made[-1]

    yield make
    for trainer in made:
        trainer.watchdog.close()
        trainer.logger.close()
        trainer.lock.release()


def generator_gradients(trainer: Trainer, batch: dict) -> list[torch.Tensor]:
    """G's parameter gradients of one step on ``batch``, as its engine is about to apply them."""
    grads: list[torch.Tensor] = []
    step = trainer.g.step

    def spy():
        grads.extend(p.grad.detach().clone() for p in trainer.g.model.parameters() if p.grad is not None)
        return step()

    trainer.g.step = spy
    trainer.train_step([batch])
    return grads


@pytest.mark.parametrize(("recipe", "overrides"), [(recipe, ()) for recipe in RECIPES] +
                         [("encodec_tiny.yaml", ("model.generator.quantizer=factorized",))])
def test_unrescaled_balancing_gives_the_plain_gradients(make_trainer, recipe: str, overrides: tuple[str, ...]) -> None:
    """With rescale_grads=false the balanced gradient at the audio is sum w_i g_i, so G's
    gradients are the plain objective's: the audio terms' weights and the unbalanced rest add up to
    ``generator_terms``' total for every family. Rescaled, they differ."""
    config = REPO_ROOT / "configs" / recipe
    plain = make_trainer(*overrides, config=config)
    unrescaled = make_trainer(*overrides, *BALANCED, "loss.balancer.rescale_grads=false", config=config)
    rescaled = make_trainer(*overrides, *BALANCED, config=config)
    batch = next(plain._batches())
    expected = generator_gradients(plain, batch)
    got = generator_gradients(unrescaled, batch)
    assert len(got) == len(expected) > 0
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()) + 1e-12)
    balanced = generator_gradients(rescaled, batch)
    assert any(not torch.allclose(a, b, rtol=1e-2) for a, b in zip(balanced, expected, strict=True))


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_balanced_training_logs_scales_and_resumes_its_averages(make_trainer, precision: str) -> None:
    trainer = make_trainer(*BALANCED, f"train.precision={precision}", run="run")
    batches, logged = trainer._batches(), []
    for _ in range(3):
        logged.append(trainer.train_step([next(batches)]))
        trainer.state.step += 1
    assert all(math.isfinite(float(v)) for values in logged for k, v in values.items() if k.startswith("balancer/"))
    assert {"balancer/mel", "balancer/adv", "balancer/fm"} <= set(logged[-1])
    assert float(logged[0]["g/mel"]) != float(logged[-1]["g/mel"])
    saved = trainer.gan_step.state_dict()["balancer"]
    assert set(saved) == {"g/mel", "g/adv", "g/fm"}
    assert float(saved["g/mel"][1]) == pytest.approx(1 + 0.9 + 0.81)  # three updates of the average
    written = trainer.save_checkpoint()
    on_disk = torch.load(written / "trainer.pt", weights_only=True)["gan_step"]["balancer"]
    trainer.watchdog.close()
    trainer.lock.release()
    resumed = make_trainer(*BALANCED, f"train.precision={precision}", run="run")
    assert resumed.resumed_from is not None
    for name, row in saved.items():
        assert torch.equal(on_disk[name], row) and torch.equal(resumed.gan_step.balancer.state_dict()[name], row)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["tiny.yaml", "dac_tiny.yaml"])
def test_balanced_training_under_deepspeed_zero2(tmp_path: Path, recipe: str) -> None:
    """One process, ZeRO-2 (the engine's own backward of the surrogate; DeepSpeed's hooks on G's
    output, a tensor or a codec's NamedTuple, left to it): it trains and checkpoints the averages."""
    run_distgan(train_args(tmp_path, *BALANCED, "train.max_steps=3",
                           f"dist.deepspeed_config={LAUNCH / 'deepspeed' / 'zero2.json'}",
                           config=REPO_ROOT / "configs" / recipe))
    rows = local_logs(tmp_path)
    assert [row["step"] for row in rows] == [1, 2, 3]
    assert all(math.isfinite(row[key]) for row in rows for key in ("g/mel", "balancer/mel", "balancer/adv"))
    assert rows[0]["g/mel"] != rows[-1]["g/mel"] and rows[0]["balancer/mel"] != rows[-1]["balancer/mel"]
    final = checkpoints(tmp_path)[-1]
    state = torch.load(final / "trainer.pt", weights_only=True)
    assert state["deepspeed_stage"] == 2
    assert set(state["gan_step"]["balancer"]) == {"g/mel", "g/adv", "g/fm"}
    assert float(state["gan_step"]["balancer"]["g/adv"][1]) == pytest.approx(1 + 0.9 + 0.81)


@pytest.mark.slow
def test_under_zero3_unrescaled_balancing_trains_as_the_plain_objective(tmp_path: Path) -> None:
    """ZeRO-3 gathers the frozen D's parameters for each gradient pass through it and releases them
    after (``DeepSpeedEngine.repeat_backward``): the unrescaled balancer's run follows the plain one,
    step for step, and its checkpoint (which gathers every parameter) is written."""
    zero3 = f"dist.deepspeed_config={LAUNCH / 'deepspeed' / 'zero3.json'}"
    run_distgan(train_args(tmp_path / "plain", "train.max_steps=3", zero3))
    run_distgan(train_args(tmp_path / "balanced", *BALANCED, "loss.balancer.rescale_grads=false", "train.max_steps=3",
                           zero3))
    plain, balanced = local_logs(tmp_path / "plain"), local_logs(tmp_path / "balanced")
    assert [row["step"] for row in balanced] == [1, 2, 3] and plain[0]["g/mel"] != plain[-1]["g/mel"]
    for a, b in zip(plain, balanced, strict=True):
        for key in ("g/mel", "g/adv", "g/fm", "d/total"):
            assert b[key] == pytest.approx(a[key], rel=1e-4), (a["step"], key)
    state = torch.load(checkpoints(tmp_path / "balanced")[-1] / "trainer.pt", weights_only=True)
    assert state["deepspeed_stage"] == 3 and set(state["gan_step"]["balancer"]) == {"g/mel", "g/adv", "g/fm"}


def test_a_balanced_step_reads_the_device_once_and_a_nan_loss_keeps_the_averages(
        make_trainer, monkeypatch: pytest.MonkeyPatch) -> None:
    """No host read of the balancer's own (one process: its reducer is local); a NaN term skips G's
    update on the device, as without the balancer, and leaves its averages as they were."""
    from distgan.losses import gan as losses
    from tests.train.test_step_syncs import Counter

    trainer = make_trainer(*BALANCED, "log.every_steps=100")
    assert Counter(monkeypatch).step(trainer) == {"host reads": 1, "collectives": 1}
    before = trainer.gan_step.state_dict()["balancer"]
    g_before = [p.detach().clone() for p in trainer.g.model.parameters()]
    mel_l1 = losses.mel_l1_loss
    monkeypatch.setattr(losses, "mel_l1_loss", lambda *args: mel_l1(*args) * float("nan"))
    Counter(monkeypatch).step(trainer)
    assert trainer.state.consecutive_skips == 1 and trainer.gan_step.bad_terms == "g/mel (rank 0)"
    assert all(torch.equal(a, b) for a, b in zip(trainer.g.model.parameters(), g_before, strict=True))
    after = trainer.gan_step.state_dict()["balancer"]
    assert all(torch.equal(after[name], row) for name, row in before.items())
