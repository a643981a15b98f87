"""A training step makes one host read and one agreement between ranks (``distgan/train/skips.py``),
and a non-finite loss still skips its update, on the device, named in the message.

One process: every agreement is still made through ``distgan.distributed`` (a no-op there), so
counting its calls counts the collectives a DDP run would make; the multi-rank skips are
``test_nonfinite.py``'s, the counts on two ranks (``torch.distributed`` itself, DeepSpeed too)
``test_step_syncs_ranks.py``'s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import torch

from distgan import distributed
from distgan.config import load_config
from distgan.distributed import ProcessInfo
from distgan.losses import gan as losses
from distgan.train.skips import SkipGuard
from distgan.train.trainer import Trainer
from tests.train.helpers import FAST, REPO_ROOT, TINY

# Every way a tensor's value reaches the host (``.numpy()`` refuses device tensors).
HOST_READS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__")
COLLECTIVES = ("any_rank", "any_rank_each", "all_reduce_sum", "all_gather_object", "broadcast_object",
               "barrier", "problems_anywhere")


class Counter:
    """Host reads and collectives made while ``active``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.active = False
        self.counts: dict[str, int] = defaultdict(int)
        for name in HOST_READS:
            self._wrap(monkeypatch, torch.Tensor, name, "host reads")
        for name in COLLECTIVES:
            self._wrap(monkeypatch, distributed, name, "collectives")

    def _wrap(self, monkeypatch: pytest.MonkeyPatch, owner: object, name: str, kind: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            if self.active:
                self.counts[kind] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    def step(self, trainer: Trainer) -> dict[str, int]:
        """What one ``Trainer._step`` made (its batch taken beforehand: the loader's own reads,
        such as its epoch's seed from the CPU generator, are not the step's)."""
        batches = iter([next(trainer._batches())])
        self.counts.clear()
        self.active = True
        try:
            assert trainer._step(batches)
        finally:
            self.active = False
        trainer.state.step = 0  # the next test's step is a first one too
        return dict(self.counts)


@pytest.fixture(scope="module")
def trainer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trainer]:
    """One process, ``log.every_steps`` far away: a step is not a log step."""
    made = Trainer(load_config(TINY, [*FAST, "log.every_steps=100"]), tmp_path_factory.mktemp("syncs") / "run")
    yield made
    made.watchdog.close()
    made.logger.close()


def test_a_step_reads_the_device_once_and_agrees_once(trainer, monkeypatch: pytest.MonkeyPatch) -> None:
    assert trainer.gan_step.skips.on_device  # fused AdamW: the default path
    counter = Counter(monkeypatch)
    assert counter.step(trainer) == {"host reads": 1, "collectives": 1}
    assert trainer.state.consecutive_skips == 0


def test_a_bigvgan_step_reads_the_device_once_and_agrees_once(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """BigVGAN-v2's modules too: the CQT discriminator's resampler computes its output length on
    the host (``cqt.DoubleRate``: torchaudio's read it from a tensor, six reads a step)."""
    from tests.bench.test_reference_step import SMALL_BIGVGAN

    cfg = load_config(REPO_ROOT / "configs" / "bigvgan_tiny.yaml", [*SMALL_BIGVGAN, "log.every_steps=100"])
    made = Trainer(cfg, tmp_path / "run")
    try:
        assert Counter(monkeypatch).step(made) == {"host reads": 1, "collectives": 1}
    finally:
        made.watchdog.close()
        made.logger.close()


def test_a_nan_loss_skips_its_update_on_the_device_and_is_named(trainer, monkeypatch: pytest.MonkeyPatch) -> None:
    mel_l1 = losses.mel_l1_loss
    monkeypatch.setattr(losses, "mel_l1_loss", lambda *args: mel_l1(*args) * float("nan"))
    g_before = [p.detach().clone() for p in trainer.g.model.parameters()]
    d_before = [p.detach().clone() for p in trainer.d.model.parameters()]
    counted: list[dict[str, float]] = []
    monkeypatch.setattr(trainer.gan_step, "count", counted.append)
    adam_steps = trainer.g.optimizer.state[next(trainer.g.model.parameters())].get("step")
    counter = Counter(monkeypatch)
    made = counter.step(trainer)
    assert all(torch.equal(a, b) for a, b in zip(trainer.g.model.parameters(), g_before, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(trainer.d.model.parameters(), d_before, strict=True))
    assert trainer.gan_step.bad_terms == "g/mel (rank 0)"
    assert trainer.state.consecutive_skips == 1
    assert counted == [{"skipped_updates/g": 1.0}]  # D's update went on
    after = trainer.g.optimizer.state[next(trainer.g.model.parameters())]["step"]
    assert float(after) == (float(adam_steps) if adam_steps is not None else 0.0)  # Adam's count not advanced
    # Only a skipped step pays for its message: the failed terms read, and gathered over ranks.
    assert made["collectives"] == 2 and made["host reads"] > 1


def test_without_device_skips_a_non_finite_loss_is_read_and_skipped_before_its_backward() -> None:
    """DeepSpeed's engines (and a non-fused optimizer) cannot skip on the device: the host path."""

    class Engine:
        name, dropped = "generator", 0

        def zero_grad(self) -> None:
            self.dropped += 1

    guard, engine = SkipGuard(ProcessInfo(0, 1, 0, torch.device("cpu"), True), on_device=False), Engine()
    guard.begin()
    total = torch.tensor(2.0)
    assert guard.guard(engine, {"g/mel": total}, total) is total  # finite: the loss as it is
    assert guard.guard(engine, {"g/mel": total, "g/adv": torch.tensor(float("inf"))}, total) is None
    assert engine.dropped == 1
    values, skipped, agreed = guard.settle({"stop": True})
    assert (values, skipped, agreed) == ({}, ["g"], {"stop": True, "validate": False})
    assert guard.bad_terms == "g/adv (rank 0)"


@pytest.mark.parametrize(("precision", "check_grad_overflow", "compute_grad_norm", "version", "on_device"), [
    ("fp32", True, True, "0.19.8", True),
    ("bf16", True, True, "0.20.0", True),
    ("bf16", False, True, "0.19.8", False),  # ZeRO-1/2 would apply a NaN update
    ("fp32", True, False, "0.19.8", False),  # no norm, no check
    ("fp16", True, True, "0.19.8", False),  # a NaN loss would walk the loss scale down to its exit
    ("fp32", True, True, "0.17.0", False),  # not read in that source
])
def test_deepspeed_skips_on_the_device_only_where_its_own_step_drops_a_non_finite_update(
        precision: str, check_grad_overflow: bool, compute_grad_norm: bool, version: str, on_device: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import deepspeed

    from distgan.train.deepspeed_engine import drops_non_finite_updates

    monkeypatch.setattr(deepspeed, "__version__", version)
    config = SimpleNamespace(zero_config=SimpleNamespace(compute_grad_norm=compute_grad_norm),
                             bfloat16_config=SimpleNamespace(check_grad_overflow=check_grad_overflow))
    engine = SimpleNamespace(_config=config, fp16_enabled=lambda: precision == "fp16",
                             bfloat16_enabled=lambda: precision == "bf16")
    assert drops_non_finite_updates(engine) is on_device
