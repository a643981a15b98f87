"""Issue 14's "one synchronisation per step", counted on two real ranks (gloo, CPU).

Each rank wraps the ``torch.distributed`` collectives themselves (every one the module has, DDP's
``_broadcast_coalesced`` and the point-to-point calls included) and every read of a tensor's value
on the host, then trains through ``Trainer.fit``; ``scripts_cluster/sync_counts.py`` says what a
step is and what is counted. The steps counted are neither log, validation nor checkpoint steps.
Not counted, because Python never sees them: DDP's gradient-bucket all-reduces, which its C++
reducer launches during the backward. They are the gradient communication itself, which data
parallelism exists to do, overlapped with the backward, not a synchronisation of the loop.

One launch runs five cases one after another in the same two processes: HiFi-GAN (tiny) under
DDP with ``log.val_every_minutes`` on, the WaveGAN family under DDP with ``dist.batchnorm=local``,
HiFi-GAN under DeepSpeed ZeRO-2 (fp32 and bf16) and ZeRO-3, and the EnCodec family (EMA codebooks) under DDP. At the last step, which is not counted, rank 1's
validation clock says a validation is due (DDP), and rank 1's mel loss is NaN (DeepSpeed).
"""

from __future__ import annotations

import json

import pytest
import torch

from distgan.config import load_config
from distgan.distributed import ProcessInfo
from distgan.families.encodec.objective import EncodecObjective
from tests.train.helpers import FAST, LAUNCH, REPO_ROOT, TINY
from tests.train.scripts_cluster.ranks import ranks

INFO = ProcessInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"), is_main=True)
STEPS = 2  # counted; the launch trains one more per case
QUIET = [*FAST, "log.every_steps=100"]  # no log step among the counted ones
CASES = {
    "hifigan": {"config": str(TINY), "overrides": [*QUIET, "log.val_every_minutes=60"], "clock_rank": 1},
    "wavegan": {"config": str(REPO_ROOT / "configs" / "wavegan_tiny.yaml"),
                "overrides": [*QUIET, "dist.batchnorm=local"]},
    # Before the DeepSpeed cases: Accelerate's DeepSpeed plugin leaves ACCELERATE_USE_DEEPSPEED set in
    # the process, which a later case's launch would read as a DeepSpeed launch.
    "encodec": {"config": str(REPO_ROOT / "configs" / "encodec_tiny.yaml"), "overrides": QUIET},
    "zero2": {"config": str(TINY), "overrides": [*QUIET, f"dist.deepspeed_config={LAUNCH / 'deepspeed' / 'zero2.json'}"],
              "nan_rank": 1},
    "zero3": {"config": str(TINY), "overrides": [*QUIET, f"dist.deepspeed_config={LAUNCH / 'deepspeed' / 'zero3.json'}"],
              "nan_rank": 1},
    "zero2_bf16": {"config": str(TINY), "overrides": [*QUIET, "train.precision=bf16",
                                                      f"dist.deepspeed_config={LAUNCH / 'deepspeed' / 'zero2.json'}"],
                   "nan_rank": 1},
}


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """Per case, each rank's report: its calls per step, buffer digests, what the last step did."""
    out = tmp_path_factory.mktemp("sync-counts")
    spec = {"out": str(out), "steps": STEPS, "cases": CASES}
    with ranks([json.dumps(spec)], out / "output", script="sync_counts.py") as job:
        assert job.wait(300) == [0, 0], job.report()
    return {name: [json.loads((out / f"{name}-rank-{rank}.json").read_text()) for rank in (0, 1)]
            for name in CASES}


def per_step(report: dict, kind: str, origin: str = "") -> list[int]:
    """How many calls of ``kind`` each counted step made, from modules named ``origin``*."""
    return [sum(call.split(" from ")[1].startswith(origin) for call in step[kind]) for step in report["steps"]]


def test_a_ddp_step_makes_one_collective_and_one_host_read_on_every_rank(counted) -> None:
    """With the validation clock on: its verdict travels in the step's one all-reduce (``skips.py``)."""
    for rank, report in enumerate(counted["hifigan"]):
        assert per_step(report, "collectives") == [1] * STEPS, (rank, report["steps"])
        assert per_step(report, "host reads") == [1] * STEPS, (rank, report["steps"])
        assert all(step["collectives"][0].startswith("all_reduce from distgan.distributed") and
                   step["host reads"][0].startswith("Tensor.tolist from distgan.train.skips")
                   for step in report["steps"]), report["steps"]


def test_spectral_norm_vectors_stay_equal_without_ddp_broadcasting_them(counted) -> None:
    """DDP's buffer broadcast is off (``ddp_engine``): the MSD's power-iteration vectors, which every
    training-mode forward advances, still agree between the ranks after the run."""
    rank0, rank1 = counted["hifigan"]
    assert rank0["buffers"]["discriminator"] == rank1["buffers"]["discriminator"]


def test_a_validation_due_by_one_ranks_clock_runs_on_every_rank(counted) -> None:
    assert [report["validated"] for report in counted["hifigan"]] == [[STEPS + 1], [STEPS + 1]]


def test_local_batchnorm_adds_no_collective_and_checkpoints_agree(counted) -> None:
    """``dist.batchnorm=local`` averages the running estimates before a checkpoint, not after each
    step; the last step's checkpoint leaves every rank with the same ones."""
    rank0, rank1 = counted["wavegan"]
    for report in (rank0, rank1):
        assert per_step(report, "collectives") == [1] * STEPS, report["steps"]
        assert per_step(report, "host reads") == [1] * STEPS, report["steps"]
    assert rank0["buffers"] == rank1["buffers"]


def test_a_deepspeed_zero2_step_costs_distgan_one_collective_and_one_host_read(counted) -> None:
    """DeepSpeed's own calls are counted too, so that a change is seen: per model its gradient
    all-reduce, its gradient-norm all-reduce and the all-gather of the updated parameters, and one
    host read of whether that norm is finite (which is what lets distgan skip on the device)."""
    for rank, report in enumerate(counted["zero2"]):
        assert per_step(report, "collectives", "distgan.") == [1] * STEPS, (rank, report["steps"])
        assert per_step(report, "host reads", "distgan.") == [1] * STEPS, (rank, report["steps"])
        assert per_step(report, "collectives", "deepspeed.") == [6] * STEPS, (rank, report["steps"])
        assert per_step(report, "host reads", "deepspeed.") == [2] * STEPS, (rank, report["steps"])
        assert per_step(report, "collectives") == [7] * STEPS and per_step(report, "host reads") == [3] * STEPS


@pytest.mark.parametrize("stage", ["zero2", "zero3", "zero2_bf16"])
def test_under_deepspeed_a_nan_loss_on_one_rank_skips_that_update_on_both(counted, stage: str) -> None:
    """No loss is read before its backward under ZeRO-2/3 any more: the NaN reaches the gradient
    norm, and DeepSpeed drops the generator's update on every rank (the whole parameters compared,
    gathered under ZeRO-3); the discriminator's goes ahead."""
    for report in counted[stage]:
        assert report["changed"] == {"generator": False, "discriminator": True}
        assert report["bad_terms"] == "g/mel (rank 1)"


def test_ema_codebooks_add_one_all_reduce_per_quantizer_layer_and_stay_equal(counted) -> None:
    """EnCodec's EMA codebooks (``codebook_sync``): per step, one all-reduce for each quantizer layer
    the drawn bandwidth runs, besides the step's own; a layer's first step adds its k-means start
    (an all-reduce, an all-gather and an all-reduce). The codebooks are equal on both ranks after."""
    objective = EncodecObjective(load_config(REPO_ROOT / "configs" / "encodec_tiny.yaml"), None, None, INFO)
    runs = [int(objective.generator_input(torch.zeros(2, 4096), step, 0, 0)[1]) for step in range(STEPS)]  # the step index the loop passes: 0-based
    started, expected = 0, []
    for n_q in runs:
        expected.append(["all_reduce"] * n_q + ["all_reduce", "all_gather", "all_reduce"] * max(0, n_q - started))
        started = max(started, n_q)
    for rank, report in enumerate(counted["encodec"]):
        assert per_step(report, "collectives", "distgan.distributed") == [1] * STEPS, (rank, report["steps"])
        made = [sorted(call.split(" from ")[0] for call in step["collectives"] if "codebook_sync" in call)
                for step in report["steps"]]
        assert made == [sorted(calls) for calls in expected], (rank, runs, report["steps"])
        assert per_step(report, "collectives") == [1 + len(calls) for calls in expected], (rank, report["steps"])
    rank0, rank1 = counted["encodec"]
    assert rank0["buffers"]["generator"] == rank1["buffers"]["generator"]


@pytest.mark.parametrize("stage", ["zero3", "zero2_bf16"])
def test_other_deepspeed_steps_cost_distgan_one_collective_and_one_host_read(counted, stage: str) -> None:
    """ZeRO-3's own collectives (parameter gathers in every forward and backward) are many; distgan's
    are one. bf16 under ZeRO-2 takes the device path too (``bf16.check_grad_overflow``)."""
    for rank, report in enumerate(counted[stage]):
        assert per_step(report, "collectives", "distgan.") == [1] * STEPS, (rank, report["steps"])
        assert per_step(report, "host reads", "distgan.") == [1] * STEPS, (rank, report["steps"])
