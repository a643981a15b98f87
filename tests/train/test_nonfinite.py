"""Non-finite losses: the ranks agree to skip the update, give up after a streak (exit 4, last good
checkpoint kept), or roll back to it with a lower learning rate.

The NaN comes from tests/train/scripts_cluster/faulty_train.py: ``distgan train`` whose generator
mel loss is NaN on rank 1 only, at chosen steps. Both ranks are started directly, one process
each (as srun does), so each one's exit status is seen.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from distgan.checkpoint.format import checkpoint_problem
from tests.train.helpers import checkpoints, ddp_state, local_logs, rank_state, train_args
from tests.train.scripts_cluster.ranks import ranks

BASE_LR = 5.0e-4  # configs/tiny.yaml, both models; no decay within the first epoch (11 steps)


@dataclass
class Run:
    run_dir: Path
    statuses: list[int]
    outputs: list[str]
    report: str


def faulty_run(out: Path, *overrides: str, **faults: str) -> Run:
    run_dir = out / "run"
    with ranks(train_args(run_dir, *overrides), out / "output", script="faulty_train.py", **faults) as job:
        statuses = job.wait(300)
        return Run(run_dir, statuses, [job.output(0), job.output(1)], job.report())


def rows_by_step(run_dir: Path, rank: int) -> dict[int, dict]:
    return {row["step"]: row for row in local_logs(run_dir, rank)}


def split_at_rollback(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """A rank's log rows before and after the step count went back."""
    back = next(i for i in range(1, len(rows)) if rows[i]["step"] <= rows[i - 1]["step"])
    return rows[:back], rows[back:]


@pytest.mark.slow
def test_a_nan_on_one_rank_is_skipped_by_both_and_training_goes_on(tmp_path: Path) -> None:
    run = faulty_run(tmp_path, "train.max_steps=6", NAN_RANK="1", NAN_STEPS="3")
    assert run.statuses == [0, 0], run.report
    assert run.outputs[1].count("NaN mel loss") == 1 and "NaN mel loss at step 3" in run.outputs[1]
    assert "NaN" not in run.outputs[0]
    for rank in (0, 1):
        rows = rows_by_step(run.run_dir, rank)
        assert sorted(rows) == [1, 2, 3, 4, 5, 6]
        # Step 3: rank 0's own losses were finite, yet it skipped G's update with rank 1; D's
        # update (finite on both) went ahead.
        assert "g/total" not in rows[3] and "grad_norm/g" not in rows[3], rows[3]
        assert math.isfinite(rows[3]["d/total"]) and "grad_norm/d" in rows[3]
        for step in (1, 2, 4, 5, 6):
            assert math.isfinite(rows[step]["g/total"]), (rank, step)
    final = checkpoints(run.run_dir)[-1]
    assert final.name == "step-00000006"
    state = torch.load(final / "trainer.pt", weights_only=False)["state"]
    assert state["counts"]["skipped_updates/g"] == 1.0  # counted once for the job, not per rank
    assert state["counts"]["skipped_updates/d"] == 0.0
    assert state["consecutive_skips"] == 0
    assert rank_state(final, 0)["weights"] == rank_state(final, 1)["weights"]  # still in step


@pytest.fixture(scope="module")
def nan_streak(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """NaN on rank 1 from step 5 on; a checkpoint every 2 steps; give up after 3 skips."""
    return faulty_run(tmp_path_factory.mktemp("streak"), "train.max_steps=20", "checkpoint.every_steps=2",
                      "faults.max_consecutive_skips=3", NAN_RANK="1", NAN_STEPS="5-20")


@pytest.mark.slow
def test_a_streak_of_nans_stops_with_exit_4_and_keeps_the_last_good_checkpoint(nan_streak: Run) -> None:
    run = nan_streak
    assert run.statuses == [4, 4], run.report
    last_good = run.run_dir / "checkpoints" / "step-00000004"
    for rank in (0, 1):
        message = (f"[distgan] rank {rank}: stopping: 3 consecutive updates skipped for non-finite values, "
                   f"last at step 7 in ")
        assert message in run.outputs[rank], run.report
        assert f"last good checkpoint: {last_good}" in run.outputs[rank]
    assert "last at step 7 in g/mel (rank 1)" in run.outputs[1]  # the step and the loss term
    # Step 6 was due for a checkpoint but fell inside the streak: none was written.
    assert checkpoints(run.run_dir) == [run.run_dir / "checkpoints" / "step-00000002", last_good]
    assert not list((run.run_dir / "checkpoints").glob(".tmp-step-*"))
    assert checkpoint_problem(last_good) is None
    assert torch.load(last_good / "trainer.pt", weights_only=False)["state"]["consecutive_skips"] == 0
    for rank in (0, 1):
        rows = rows_by_step(run.run_dir, rank)
        assert sorted(rows) == [1, 2, 3, 4, 5, 6]  # step 7 ended the run before its log
        assert all("g/total" not in rows[step] for step in (5, 6))


@pytest.mark.slow
def test_every_rank_names_the_non_finite_term(nan_streak: Run) -> None:
    assert "last at step 7 in g/mel (rank 1)" in nan_streak.outputs[0], nan_streak.outputs[0]


@pytest.mark.slow
def test_updates_the_optimizer_skips_count_towards_giving_up(tmp_path: Path) -> None:
    # Every loss term finite, the generator's gradients NaN from step 3 on: each G update is
    # skipped by the optimizer, and three in a row end the run (before: exit 0, G never trained).
    run = faulty_run(tmp_path, "train.max_steps=12", "faults.max_consecutive_skips=3", NAN_GRAD_STEPS="3-12")
    assert run.statuses == [4, 4], run.report
    for output in run.outputs:
        assert "3 consecutive updates skipped for non-finite values, last at step 5 in the generator's gradients" \
            in output, output[-2000:]
    rows = rows_by_step(run.run_dir, 0)
    assert math.isfinite(rows[3]["g/total"]) and not math.isfinite(rows[3]["grad_norm/g"])


@pytest.fixture(scope="module")
def rollback(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """NaN on rank 1 at steps 5-7; after 3 skips, roll back to step 4 with half the learning rate."""
    return faulty_run(tmp_path_factory.mktemp("rollback"), "train.max_steps=10", "checkpoint.every_steps=2",
                      "checkpoint.keep_last=10", "faults.max_consecutive_skips=3", "faults.rollback_lr_factor=0.5",
                      NAN_RANK="1", NAN_STEPS="5-7")


@pytest.mark.slow
def test_rollback_reloads_the_last_checkpoint_with_half_the_learning_rate(rollback: Run) -> None:
    run = rollback
    assert run.statuses == [0, 0], run.report
    last_good = run.run_dir / "checkpoints" / "step-00000004"
    assert f"rolling back to {last_good}, learning rates x0.5" in run.outputs[0], run.report
    for rank in (0, 1):
        before, after = split_at_rollback(local_logs(run.run_dir, rank))
        # Steps 5 and 6 skipped G, step 7 triggered the rollback, then 5..10 again.
        assert [row["step"] for row in before[:6]] == [1, 2, 3, 4, 5, 6]
        assert [row["step"] for row in after] == [5, 6, 7, 8, 9, 10]
        assert all(row["lr/g"] == row["lr/d"] == BASE_LR for row in before)
        for row in after:  # the abandoned step 7 is not averaged into the first row after the rollback
            assert row["lr/g"] == row["lr/d"] == BASE_LR * 0.5, row
            assert math.isfinite(row["g/total"])
    final = checkpoints(run.run_dir)[-1]
    state = torch.load(final / "trainer.pt", weights_only=False)["state"]
    assert (final.name, state["lr_scale"], state["counts"]["skipped_updates/g"]) == ("step-00000010", 0.5, 3.0)
    # Step 6's checkpoint was written after the rollback, by the halved run, not inside the streak.
    assert torch.load(final.parent / "step-00000006" / "trainer.pt", weights_only=False)["state"]["lr_scale"] == 0.5
    assert rank_state(final, 0)["weights"] == rank_state(final, 1)["weights"]


@pytest.mark.slow
def test_rollback_continues_exactly_like_a_resume_from_that_checkpoint(rollback: Run, tmp_path: Path) -> None:
    # The same checkpoint resumed by a fresh job with both learning rates halved in the config
    # must give the same curve and weights: same data position, RNG, models and optimizers.
    reference = tmp_path / "reference"
    shutil.copytree(rollback.run_dir / "checkpoints" / "step-00000004", reference / "checkpoints" / "step-00000004")
    with ranks(train_args(reference, "train.max_steps=10", "checkpoint.every_steps=2",
                          f"optim.generator.lr={BASE_LR / 2}", f"optim.discriminator.lr={BASE_LR / 2}"),
               tmp_path / "output") as job:
        assert job.wait(300) == [0, 0], job.report()
    expected = [row for row in local_logs(reference, 0) if row["step"] >= 5]
    _, after_rollback = split_at_rollback(local_logs(rollback.run_dir, 0))
    for got, want in zip(after_rollback, expected, strict=True):
        for key in ("g/total", "d/total", "lr/g"):
            assert got[key] == want[key], (got["step"], key)
    for model in ("generator", "discriminator"):
        a = ddp_state(checkpoints(reference)[-1], model)["model"]
        b = ddp_state(checkpoints(rollback.run_dir)[-1], model)["model"]
        assert all(torch.equal(a[key], b[key]) for key in a), model
