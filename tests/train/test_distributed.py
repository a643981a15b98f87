"""Two CPU processes (gloo): ranks, reduced logging from rank 0 only, identical weights, and an LR
that follows the schedule whatever the world size, under torchrun and accelerate launch."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.train.helpers import (
    checkpoints,
    event_files,
    local_logs,
    rank_state,
    run_distgan,
    scalars,
    train_args,
)

STEPS = 4
SCHEDULE = ["optim.generator.lr_decay=0.5", "optim.generator.lr_decay_every=step"]


@pytest.fixture(scope="module", params=["torchrun", "accelerate:cpu_ddp.yaml"])
def ddp_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    run = tmp_path_factory.mktemp("ddp")
    done = run_distgan(train_args(run, f"train.max_steps={STEPS}", *SCHEDULE), launcher=request.param)
    return run, done


@pytest.mark.slow
def test_each_rank_knows_its_rank_and_the_world_size(ddp_run) -> None:
    run, done = ddp_run
    # Two processes share the pipe, so their lines may run together: match anywhere.
    seen = sorted(re.findall(r"\[distgan\] rank (\d+) of (\d+) \(local rank \d+\) on \S+, (\w+)", done.stdout))
    assert seen == [("0", "2", "DDP"), ("1", "2", "DDP")], done.stdout
    final = checkpoints(run)[-1]
    assert json.loads((final / "COMPLETE").read_text())["world_size"] == 2


@pytest.mark.slow
def test_only_rank_zero_writes_events_and_scalars_are_rank_means(ddp_run) -> None:
    run, _ = ddp_run
    assert len(event_files(run)) == 1
    logged = scalars(run)
    rank0, rank1 = local_logs(run, 0), local_logs(run, 1)
    assert [r["step"] for r in rank0] == [r["step"] for r in rank1] == list(range(1, STEPS + 1))
    for a, b in zip(rank0, rank1, strict=True):
        # Ranks see different batches, so their losses differ; the log holds their mean.
        assert a["g/mel"] != b["g/mel"]
        for key in ("g/mel", "d/total", "g/total"):
            assert logged[key][a["step"]] == pytest.approx((a[key] + b[key]) / 2, rel=1e-6)
        # Throughput is the job's: the sum of the ranks' rates.
        rate = logged["perf/audio_seconds_per_second"][a["step"]]
        assert rate == pytest.approx(a["perf/audio_seconds_per_second"] + b["perf/audio_seconds_per_second"], rel=1e-6)


@pytest.mark.slow
def test_ranks_end_with_identical_weights(ddp_run) -> None:
    run, _ = ddp_run
    final = checkpoints(run)[-1]
    assert rank_state(final, 0)["weights"] == rank_state(final, 1)["weights"]


@pytest.mark.slow
def test_learning_rate_follows_the_schedule_on_two_ranks(ddp_run) -> None:
    run, _ = ddp_run
    for row in local_logs(run, 0) + local_logs(run, 1):
        # optim.generator: lr 5e-4 halved every step; the discriminator keeps its per-epoch decay.
        assert row["lr/g"] == pytest.approx(5e-4 * 0.5 ** (row["step"] - 1))
        assert row["lr/d"] == pytest.approx(5e-4)


def test_single_process_sees_rank_zero_of_one(tmp_path: Path) -> None:
    done = run_distgan(train_args(tmp_path, "train.max_steps=1"))
    assert "[distgan] rank 0 of 1 (local rank 0) on cpu, single process" in done.stdout
    assert len(event_files(tmp_path)) == 1
