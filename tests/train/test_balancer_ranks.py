"""The loss balancer across ranks: two gloo processes on batches of their own (3 clips and 1)
apply the same scales, those of the norms averaged over the ranks by clip count, with one
all-reduce per call (``tests/train/scripts_cluster/balancer_ranks.py``); and two-rank training
runs (DDP, ZeRO-3) whose ranks log different losses and the same scales."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from distgan.losses.balancer import Balancer
from tests.train.helpers import (
    checkpoints,
    local_logs,
    run_distgan,
    train_args,
    two_ranks,
)
from tests.train.scripts_cluster.balancer_ranks import CLIPS, DECAY, STEPS, WEIGHTS, batch, terms

SCRIPT = Path(__file__).parent / "scripts_cluster" / "balancer_ranks.py"


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Each rank's record (started directly: torchrun's own start-up costs seconds)."""
    out = tmp_path_factory.mktemp("balancer")
    two_ranks(SCRIPT, out, timeout=120)
    return [torch.load(out / f"rank-{rank}.pt") for rank in (0, 1)]


@pytest.mark.slow
def test_every_rank_applies_the_same_scales_with_one_all_reduce_a_call(ranks: list[dict]) -> None:
    for step in range(STEPS):
        first, second = ranks[0]["calls"][step], ranks[1]["calls"][step]
        assert torch.equal(first["scales"], second["scales"]) and torch.equal(first["norms"], second["norms"]), step
        assert first["all_reduces"] == second["all_reduces"] == 1
        assert not torch.allclose(first["own_norms"], second["own_norms"], rtol=0.1)  # the ranks' batches differ
    for name, row in ranks[0]["state"].items():
        assert torch.equal(row, ranks[1]["state"][name]), name


@pytest.mark.slow
def test_the_scales_are_those_of_the_clip_weighted_mean_norms(ranks: list[dict]) -> None:
    total, count = torch.zeros(len(WEIGHTS), dtype=torch.float64), 0.0
    ratios = torch.tensor(list(WEIGHTS.values()), dtype=torch.float64) / sum(WEIGHTS.values())
    for step in range(STEPS):
        mean = sum(CLIPS[r] * ranks[r]["calls"][step]["own_norms"] for r in (0, 1)) / sum(CLIPS)
        total, count = total * DECAY + mean, count * DECAY + 1
        expected = ratios / (1e-12 + total / count)
        torch.testing.assert_close(ranks[0]["calls"][step]["scales"], expected, rtol=1e-6, atol=0)


@pytest.mark.slow
def test_each_rank_alone_would_have_scaled_differently(ranks: list[dict]) -> None:
    """What the reduction changes: balancers on one rank's batches alone disagree with each other."""
    alone = []
    for rank in (0, 1):
        balancer = Balancer(ema_decay=DECAY)
        for step in range(STEPS):
            audio, target = batch(rank, step)
            leaf = audio.clone().requires_grad_()
            scales = balancer(terms(leaf, target), WEIGHTS, leaf).scales
        alone.append(torch.stack([scales[name] for name in WEIGHTS]))
    assert not torch.allclose(alone[0], alone[1], rtol=0.1)
    assert not torch.allclose(alone[0], ranks[0]["calls"][-1]["scales"], rtol=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["torchrun", "accelerate:cpu_zero3.yaml"])
def test_a_two_rank_run_applies_the_same_scales_on_both_ranks(tmp_path: Path, launcher: str) -> None:
    """The trainer's own reducer (DDP under torchrun, ZeRO-3 under accelerate; gloo): each rank's
    losses are its own, its scales are everyone's."""
    run_distgan(train_args(tmp_path, "loss.balancer.enabled=true", "train.max_steps=2"), launcher=launcher)
    logs = [local_logs(tmp_path, rank) for rank in (0, 1)]
    assert [row["step"] for row in logs[0]] == [1, 2]
    for first, second in zip(*logs, strict=True):
        assert first["g/mel"] != second["g/mel"]
        for key in ("balancer/mel", "balancer/adv", "balancer/fm"):
            assert first[key] == second[key], key
    state = torch.load(checkpoints(tmp_path)[-1] / "trainer.pt", weights_only=True)
    assert state["world_size"] == 2 and set(state["gan_step"]["balancer"]) == {"g/mel", "g/adv", "g/fm"}
