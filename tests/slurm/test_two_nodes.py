"""Two nodes on one host: slurm/train_multinode.sbatch run for real.

Only SLURM is a stand-in (tests/slurm/slurm_bin: ``srun`` starts one ``slurm/launch_node.sh`` per
node with its own ``SLURM_NODEID``, ``scontrol`` records the requeue); the launchers are the real
``accelerate launch`` and ``torchrun``, one process per "node", both nodes on 127.0.0.1 with the
job's port, so the two launchers rendezvous with each other as on a cluster.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from distgan.checkpoint.format import latest_checkpoint, step_folder_name
from tests.slurm.jobs import MULTI_NODE, finish, node_task, submit
from tests.train.helpers import FAST, checkpoints, event_files, free_port, kill_tree, rank_state

JOB_ID = 4321
LAUNCHES = {"torchrun-ddp": ("torchrun", "launch/cpu_ddp.yaml"),
            "accelerate-ddp": ("accelerate", "launch/cpu_ddp.yaml"),
            "accelerate-zero2": ("accelerate", "launch/cpu_zero2.yaml")}
TRAINING = ["train.max_steps=100000", "checkpoint.every_steps=2", "checkpoint.keep_last=3"]


def start(run_dir: Path, log: Path, launch: str, overrides: list[str], nodes: int = 2,
          restart: int = 0) -> subprocess.Popen:
    launcher, launch_config = LAUNCHES[launch]
    return submit(MULTI_NODE, log, JOB_ID, nodes=nodes, record_launches=False,
                  node_list_text=",".join(["127.0.0.1"] * nodes), CONFIG="configs/tiny.yaml",
                  RUN_DIR=str(run_dir), LAUNCHER=launcher, LAUNCH_CONFIG=launch_config, GPUS_PER_NODE="1",
                  MASTER_PORT=str(free_port()), SLURM_RESTART_COUNT=str(restart),
                  OVERRIDES=" ".join([*FAST, *overrides]), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def wait_for(condition: Callable[[], object], job: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if job.poll() is not None:
            raise AssertionError(f"the job ended ({job.returncode}) first:\n{job.communicate()[0]}")
        if time.monotonic() > deadline:
            kill_tree(job.pid)
            raise AssertionError(f"still waiting after {timeout} s:\n{job.communicate()[0]}")
        time.sleep(0.2)


def assert_ranks_agree(checkpoint: Path) -> None:
    assert rank_state(checkpoint, 0)["weights"] == rank_state(checkpoint, 1)["weights"]


@pytest.mark.slow
@pytest.mark.parametrize("launch", list(LAUNCHES))
def test_two_nodes_train_checkpoint_requeue_and_resume(launch: str, tmp_path: Path) -> None:
    run_dir, log = tmp_path / "run", tmp_path / "log"
    job = start(run_dir, log, launch, TRAINING)
    try:
        wait_for(lambda: checkpoints(run_dir), job)  # both nodes joined and train
        job.send_signal(signal.SIGUSR1)  # what --signal=B:USR1@300 does: the batch shell only
        status, output = finish(job, timeout=120)
    finally:
        kill_tree(job.pid)
    assert status == 0, output
    assert "2 node(s) x 1 GPU(s), head 127.0.0.1" in output and "rank 1 of 2" in output
    stopped = json.loads((run_dir / "REQUEUE_REQUESTED").read_text())["step"]
    assert (log / "scontrol.log").read_text().split() == ["requeue", str(JOB_ID)]
    final = checkpoints(run_dir)[-1]
    assert final.name == step_folder_name(stopped)
    assert_ranks_agree(final)
    assert len(event_files(run_dir)) == 1  # one TensorBoard writer (rank 0) for the job
    assert sorted(p.name for p in (run_dir / "logs").glob("rank-*.jsonl")) == ["rank-00000.jsonl", "rank-00001.jsonl"]

    # The requeued job: the same two nodes resume from that checkpoint.
    status, output = finish(start(run_dir, log, launch, [f"train.max_steps={stopped + 2}"], restart=1), 240)
    assert status == 0, output
    assert f"resumed from {final} (step {stopped})" in output
    assert checkpoints(run_dir)[-1].name == step_folder_name(stopped + 2)
    assert_ranks_agree(checkpoints(run_dir)[-1])


@pytest.mark.slow
def test_a_lost_node_is_named_and_the_job_resumes_on_the_remaining_one(tmp_path: Path) -> None:
    run_dir, log = tmp_path / "run", tmp_path / "log"
    job = start(run_dir, log, "torchrun-ddp", TRAINING)
    try:
        wait_for(lambda: checkpoints(run_dir), job)
        # Node 0 holds rank 0, the rendezvous store and the run directory's lock.
        kill_tree(node_task(log, 0))
        killed = time.monotonic()
        status, output = finish(job, timeout=120)
        took = time.monotonic() - killed
    finally:
        kill_tree(job.pid)
    assert status != 0
    assert "[distgan] rank 1: lost rank(s) 0 (no answer to the roll call" in output, output
    assert "start the job again to resume from the newest complete checkpoint" in output
    assert took < 2 + 20, took  # the roll call (FAST: 2 s) and teardown, not a collective timeout
    newest = latest_checkpoint(run_dir, report=lambda _: None, verify_content=True)
    assert newest is not None

    # The requeued job gets one node: DDP checkpoints load at any world size.
    status, output = finish(start(run_dir, log, "torchrun-ddp", [f"train.max_steps={newest.step + 2}"],
                                  nodes=1, restart=1), 240)
    assert status == 0, output
    assert f"resumed from {newest.path} (step {newest.step})" in output
    assert "world size changed 2 -> 1: epoch" in output
    assert checkpoints(run_dir)[-1].name == step_folder_name(newest.step + 2)
