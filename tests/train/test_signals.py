"""Stop requests: SIGUSR1, SIGTERM and ``RUN_DIR/STOP`` end a run at a step boundary with a
checkpoint and exit status 75; a requeue request runs ``scontrol requeue $SLURM_JOB_ID``.

The 2-process runs start one process per rank with the rendezvous in the environment, as ``srun``
does, so that each rank's own exit status is seen; ``scontrol`` is a stand-in
(tests/slurm/slurm_bin/scontrol) that records its arguments, first on PATH in every test here so that no
test can requeue a real job even when it runs inside one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from distgan.checkpoint.format import checkpoint_problem, latest_checkpoint
from distgan.cluster import REQUEUE_EXIT_CODE, REQUEUE_MARKER, request_requeue
from distgan.inference.load import load_checkpoint_generator
from distgan.train.signals import StopRequest
from tests.train.helpers import (
    REPO_ROOT,
    checkpoints,
    command,
    ddp_state,
    local_logs,
    rank_state,
    subprocess_env,
    train_args,
)
from tests.train.scripts_cluster.ranks import Ranks, ranks, wait_for

STANDINS = REPO_ROOT / "tests" / "slurm" / "slurm_bin"
JOB_ID = "4242"
MAX_STEPS = 1000  # never reached: every run here is stopped
STOPPED = re.compile(r"\[distgan\] stopped at step (\d+) \((.+)\); checkpoint: (\S+)")


@pytest.fixture
def slurm_env(tmp_path: Path) -> dict[str, str]:
    """A SLURM job's environment with only the scontrol stand-in (no launcher stand-ins) on PATH."""
    bin_dir, log = tmp_path / "bin", tmp_path / "standin-log"
    bin_dir.mkdir()
    log.mkdir()
    (bin_dir / "scontrol").symlink_to(STANDINS / "scontrol")
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "STANDIN_LOG": str(log), "SLURM_JOB_ID": JOB_ID}


def scontrol_calls(env: dict[str, str]) -> list[str]:
    path = Path(env["STANDIN_LOG"]) / "scontrol.log"
    return path.read_text().splitlines() if path.exists() else []


def steps_logged(run_dir: Path, rank: int) -> int:
    path = run_dir / "logs" / f"rank-{rank:05d}.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


def start_and_train_a_little(run_dir: Path, out_dir: Path, env: dict[str, str]) -> Ranks:
    """Two ranks past their second step: handlers installed, a checkpoint not yet due."""
    job = Ranks(train_args(run_dir, f"train.max_steps={MAX_STEPS}"), out_dir, **env)
    wait_for(lambda: min(steps_logged(run_dir, 0), steps_logged(run_dir, 1)) >= 2, 120, "two steps", job)
    return job


def check_stopped(job: Ranks, run_dir: Path, reason: str) -> int:
    """Both ranks exited 75 after one complete checkpoint at the step they stopped at; that step."""
    statuses = job.wait(120)
    assert statuses == [REQUEUE_EXIT_CODE, REQUEUE_EXIT_CODE], job.report()
    (step, said, path), = STOPPED.findall(job.output(0))
    step = int(step)
    assert said == reason
    assert 2 <= step < MAX_STEPS
    assert [Path(path)] == checkpoints(run_dir) == [run_dir / "checkpoints" / f"step-{step:08d}"]
    assert checkpoint_problem(Path(path)) is None
    assert rank_state(Path(path), 0)["weights"] == rank_state(Path(path), 1)["weights"]
    for rank in (0, 1):
        assert local_logs(run_dir, rank)[-1]["step"] == step  # trained up to it, not beyond
    assert not (run_dir / "STOP").exists()  # consumed: the next job must not stop at once
    return step


# ---- the StopRequest and request_requeue pieces, in this process --------------------------------

def test_a_signal_is_recorded_and_acted_on_later(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGUSR1)
    stop = StopRequest(tmp_path)
    try:
        assert not stop()
        signal.raise_signal(signal.SIGUSR1)  # the default action would end this process
        assert stop() and stop.wants_requeue and stop.describe() == "SIGUSR1"
        signal.raise_signal(signal.SIGTERM)
        assert stop.describe() == "SIGUSR1" and stop.extra_signals == 1 and stop.wants_requeue
    finally:
        stop.restore()
    assert signal.getsignal(signal.SIGUSR1) == before


def test_sigterm_and_the_stop_file_ask_for_a_requeue_only_when_it_says_requeue(tmp_path: Path) -> None:
    stop = StopRequest(tmp_path)
    try:
        signal.raise_signal(signal.SIGTERM)
        assert stop() and not stop.wants_requeue and stop.describe() == "SIGTERM"
    finally:
        stop.restore()
    stop = StopRequest(tmp_path, install=False)
    (tmp_path / "STOP").touch()
    assert stop() and not stop.wants_requeue and stop.describe() == f"stop file {tmp_path / 'STOP'}"
    (tmp_path / "STOP").write_text("requeue\n")
    assert stop.wants_requeue
    stop.consume_stop_file()
    assert not stop() and not stop.wants_requeue


def test_request_requeue_calls_scontrol_and_leaves_the_marker(tmp_path: Path, slurm_env: dict[str, str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in slurm_env.items():
        monkeypatch.setenv(key, value)
    assert request_requeue(tmp_path, 12, "SIGUSR1")
    assert scontrol_calls(slurm_env) == [f"requeue {JOB_ID}"]
    marker = json.loads((tmp_path / REQUEUE_MARKER).read_text())
    assert (marker["step"], marker["reason"], marker["job_id"]) == (12, "SIGUSR1", JOB_ID)


def test_a_failed_requeue_leaves_no_marker(tmp_path: Path, slurm_env: dict[str, str],
                                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    # Without the marker the sbatch script exits with the launch's status instead of 0, so a job
    # that will not come back does not look finished.
    for key, value in {**slurm_env, "SCONTROL_EXIT": "1"}.items():
        monkeypatch.setenv(key, value)
    assert not request_requeue(tmp_path, 12, "SIGUSR1")
    assert scontrol_calls(slurm_env) == [f"requeue {JOB_ID}"]
    assert not (tmp_path / REQUEUE_MARKER).exists()
    assert f"scontrol requeue {JOB_ID} failed (1)" in capsys.readouterr().out


def test_outside_slurm_nothing_is_requeued(tmp_path: Path, slurm_env: dict[str, str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", slurm_env["PATH"])
    monkeypatch.setenv("STANDIN_LOG", slurm_env["STANDIN_LOG"])
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert not request_requeue(tmp_path, 12, "SIGUSR1")
    assert scontrol_calls(slurm_env) == []
    assert json.loads((tmp_path / REQUEUE_MARKER).read_text())["job_id"] is None


# ---- real 2-process runs ------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("signalled", [[0, 1], [1]], ids=["both-ranks", "rank-1-only"])
def test_sigusr1_checkpoints_requeues_and_exits_75(signalled: list[int], tmp_path: Path,
                                                   slurm_env: dict[str, str]) -> None:
    run_dir = tmp_path / "run"
    job = start_and_train_a_little(run_dir, tmp_path / "out", {**slurm_env, "SCONTROL_SECONDS": "1"})
    try:
        job.send(signal.SIGUSR1, signalled)
        wait_for(lambda: job.procs[1].poll() is not None, 120, "rank 1's exit")
        # Rank 1 left only once rank 0 had requeued (a slow scontrol here): a rank leaving first
        # would make srun --kill-on-bad-exit or torchrun's agent stop rank 0 in the middle.
        assert (run_dir / REQUEUE_MARKER).exists() and scontrol_calls(slurm_env), job.report()
        # A signal that reached rank 1 only is agreed on: rank 0 stops and requeues too.
        step = check_stopped(job, run_dir, "SIGUSR1" if 0 in signalled else "stop requested on another rank")
    finally:
        job.kill()
    assert scontrol_calls(slurm_env) == [f"requeue {JOB_ID}"]
    marker = json.loads((run_dir / REQUEUE_MARKER).read_text())
    assert (marker["step"], marker["job_id"]) == (step, JOB_ID)


@pytest.mark.slow
def test_more_signals_during_the_save_do_not_corrupt_it(tmp_path: Path, slurm_env: dict[str, str]) -> None:
    run_dir = tmp_path / "run"
    job = start_and_train_a_little(run_dir, tmp_path / "out", slurm_env)
    try:
        job.send(signal.SIGUSR1)
        root = run_dir / "checkpoints"
        wait_for(lambda: root.is_dir() and any(root.glob(".tmp-step-*")), 60, "checkpoint being written", job,
                 poll=0.001)
        # Signals keep arriving while the checkpoint is written (an impatient user, or SLURM's
        # SIGTERM after the warning): they must neither interrupt nor restart it.
        while True:
            job.send(signal.SIGUSR1)
            job.send(signal.SIGTERM)
            if not (any(root.glob(".tmp-step-*")) and job.alive()):
                break
            time.sleep(0.001)
        step = check_stopped(job, run_dir, "SIGUSR1")
    finally:
        job.kill()
    assert scontrol_calls(slurm_env) == [f"requeue {JOB_ID}"]  # once, for the first signal
    checkpoint = latest_checkpoint(run_dir)
    assert checkpoint is not None and checkpoint.step == step
    generator, _, saved_step = load_checkpoint_generator(checkpoint.path)
    assert saved_step == step
    state = ddp_state(checkpoint.path, "generator")
    for name, tensor in generator.state_dict().items():
        assert torch.equal(tensor, state["model"][name])
    discriminator = ddp_state(checkpoint.path, "discriminator")
    assert discriminator["optimizer"]["state"]  # Adam moments were written, not an empty shell
    assert checkpoint.trainer_state()["state"]["step"] == step


@pytest.mark.slow
def test_stop_file_requeues_like_sigusr1_and_the_requeued_job_resumes(tmp_path: Path,
                                                                      slurm_env: dict[str, str]) -> None:
    run_dir = tmp_path / "run"
    job = start_and_train_a_little(run_dir, tmp_path / "out", slurm_env)
    try:
        (run_dir / "STOP").write_text("requeue\n")  # what slurm/job.sh's USR1 trap writes
        step = check_stopped(job, run_dir, f"stop file {run_dir / 'STOP'}")
    finally:
        job.kill()
    assert scontrol_calls(slurm_env) == [f"requeue {JOB_ID}"]
    assert json.loads((run_dir / REQUEUE_MARKER).read_text())["step"] == step

    # The requeued job: same command, same run directory, resumes and finishes.
    with ranks(train_args(run_dir, f"train.max_steps={step + 2}"), tmp_path / "out-requeued",
               **slurm_env) as requeued:
        assert requeued.wait(120) == [0, 0], requeued.report()
    assert f"[distgan] resumed from {run_dir / 'checkpoints' / f'step-{step:08d}'} (step {step})" in requeued.output(0)
    assert checkpoints(run_dir)[-1].name == f"step-{step + 2:08d}"
    assert [row["step"] for row in local_logs(run_dir, 1)][-3:] == [step, step + 1, step + 2]


@pytest.mark.slow
def test_sigterm_stops_with_a_checkpoint_but_does_not_requeue(tmp_path: Path, slurm_env: dict[str, str]) -> None:
    run_dir = tmp_path / "run"
    job = start_and_train_a_little(run_dir, tmp_path / "out", slurm_env)
    try:
        job.send(signal.SIGTERM)
        check_stopped(job, run_dir, "SIGTERM")
    finally:
        job.kill()
    assert scontrol_calls(slurm_env) == []
    assert not (run_dir / REQUEUE_MARKER).exists()


@pytest.mark.slow
def test_sigusr1_to_torchrun_reaches_its_workers(tmp_path: Path, slurm_env: dict[str, str]) -> None:
    # With SIGUSR1 in PET_SIGNALS_TO_HANDLE (slurm/launch_node.sh sets it), torchrun's agent
    # forwards it to the workers. torchrun itself then fails with its own status, which is why
    # the sbatch scripts read REQUEUE_REQUESTED rather than the launcher's status.
    run_dir = tmp_path / "run"
    env = subprocess_env(PET_SIGNALS_TO_HANDLE="SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1", **slurm_env)
    with open(tmp_path / "torchrun.out", "w") as out:
        agent = subprocess.Popen(command(train_args(run_dir, f"train.max_steps={MAX_STEPS}"), "torchrun"),
                                 cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: min(steps_logged(run_dir, 0), steps_logged(run_dir, 1)) >= 2, 120, "two steps")
        agent.send_signal(signal.SIGUSR1)
        agent.wait(120)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    output = (tmp_path / "torchrun.out").read_text()
    (step, reason, path), = STOPPED.findall(output)
    assert reason == "SIGUSR1" and int(step) < MAX_STEPS, output
    assert checkpoint_problem(Path(path)) is None and checkpoints(run_dir) == [Path(path)]
    assert scontrol_calls(slurm_env) == [f"requeue {JOB_ID}"]
    assert json.loads((run_dir / REQUEUE_MARKER).read_text())["step"] == int(step)
