"""Kill-and-resume: SIGKILL one rank of a 2-process run at random moments, again and again.

Each time the job is started again on the same run directory, as a requeued SLURM job would be,
it must resume from the newest *complete* checkpoint (never from the hidden folder a kill left
half-written), and after all the kills the run must end exactly where an uninterrupted run of the
same number of steps ends: the same generator and discriminator, bit for bit, and the same loss
at every step.

The kills come from a seeded generator (``SEED``: kind, victim, delays), so a failure reproduces
up to process timing. Three kinds: while a checkpoint is being written (the moment its
``.tmp-step-*`` folder appears, plus up to 10 ms), a few steps into the run, and during start-up
and resume.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from tests.train.helpers import checkpoints, ddp_state, local_logs, run_distgan, train_args
from tests.train.scripts_cluster.ranks import Ranks, wait_for

SEED = 20240611
KILLS = 8  # at least; more (up to MAX_KILLS) until PARTIAL_KILLS of them hit a checkpoint write
PARTIAL_KILLS = 2
MAX_KILLS = 16
# Each seeded kill takes the killed run about one step further (8 kills, the usual: ~7 steps; 16,
# the most: under 25), so 32 leaves room for all of them, and the resumed run ends in epoch 2.
TOTAL_STEPS = 32
# A checkpoint at every step, so that most moments are close to one; 2 ranks x batch 2 over the
# synthetic corpus's 44 clips is 11 steps an epoch: the kills land in several epochs.
SETTINGS = [f"train.max_steps={TOTAL_STEPS}", "checkpoint.every_steps=1", "checkpoint.keep_last=2"]
RESUMED = re.compile(r"\[distgan\] resumed from (\S+) \(step (\d+)\)")
IGNORED = re.compile(r"\[distgan\] ignoring incomplete checkpoint (\S+):")
GRACE_SECONDS = 20  # srun --kill-on-bad-exit kills the other tasks of a step that lost one


def is_complete(path: Path) -> bool:
    """Checked here from the files, independently of distgan's own check."""
    needed = ["COMPLETE", "trainer.pt", "generator/state.pt", "discriminator/state.pt",
              "ranks/rank-00000.pt", "ranks/rank-00001.pt"]
    return path.name.startswith("step-") and all((path / name).is_file() for name in needed)


def newest_complete(run_dir: Path) -> Path | None:
    complete = [path for path in checkpoints(run_dir) if is_complete(path)]
    return complete[-1] if complete else None


def step_of(path: Path | None) -> int:
    return int(path.name.rsplit("-", 1)[1]) if path is not None else 0


def partial_folders(run_dir: Path) -> list[Path]:
    root = run_dir / "checkpoints"
    return sorted(p for p in root.glob(".tmp-step-*")) if root.is_dir() else []


@dataclass
class Kill:
    mode: str
    victim: int
    resume_expected: int  # the newest complete checkpoint's step when the job started
    resumed: int | None = None  # what the job said it resumed from, if it got that far
    partial_left: list[int] = field(default_factory=list)  # steps of half-written checkpoints left
    survivor_status: int | None = None  # the other rank's exit status; None: it had to be killed


def kill_once(run_dir: Path, out_dir: Path, rng: random.Random) -> Kill:
    start = newest_complete(run_dir)
    kill = Kill(rng.choice(["checkpoint write", "checkpoint write", "steps", "start-up"]), rng.choice([0, 1]),
                step_of(start))
    job = Ranks(train_args(run_dir, *SETTINGS), out_dir)
    try:
        root = run_dir / "checkpoints"
        if kill.mode == "checkpoint write":
            def writing() -> bool:
                return root.is_dir() and any(entry.name.startswith(".tmp-step-")
                                             and int(entry.name.rsplit("-", 1)[1]) > kill.resume_expected
                                             for entry in os.scandir(root))
            wait_for(writing, 120, "checkpoint being written", job, poll=0.002)
            time.sleep(rng.uniform(0, 0.01))
        elif kill.mode == "steps":
            target = kill.resume_expected + rng.randint(1, 3)
            wait_for(lambda: step_of(newest_complete(run_dir)) >= target, 120, f"step {target}", job)
            time.sleep(rng.uniform(0, 0.1))
        else:
            time.sleep(rng.uniform(0.5, 4.0))
        assert job.alive(), f"the job ended before the kill\n{job.report()}"
        job.send(signal.SIGKILL, [kill.victim])
        deadline = time.monotonic() + GRACE_SECONDS
        while job.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        kill.survivor_status = job.procs[1 - kill.victim].poll()
    finally:
        job.kill()
    output = job.output(0)
    resumed = RESUMED.findall(output)
    if resumed:
        path, step = resumed[0]
        assert Path(path) == start and int(step) == kill.resume_expected, (kill, output)
        kill.resumed = int(step)
    for path in IGNORED.findall(output):
        assert not is_complete(Path(path)), f"a complete checkpoint was ignored: {path}"
    kill.partial_left = [step_of(path) for path in partial_folders(run_dir)]
    return kill


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_matches_a_straight_run(tmp_path: Path) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    reference = Ranks(train_args(straight, *SETTINGS), tmp_path / "out-straight")
    try:
        assert reference.wait(300) == [0, 0], reference.report()
    finally:
        reference.kill()

    rng = random.Random(SEED)
    history: list[Kill] = []
    # Whether a kill lands before or after the rename into place depends on timing as well:
    # kill until enough of them left a half-written checkpoint behind.
    while len(history) < KILLS or sum(bool(k.partial_left) for k in history) < PARTIAL_KILLS:
        assert len(history) < MAX_KILLS, "\n".join(map(str, history))
        history.append(kill_once(killed, tmp_path / f"out-{len(history)}", rng))
        assert step_of(newest_complete(killed)) < TOTAL_STEPS, f"too few steps left for the kills: {history}"
    summary = "\n".join(map(str, history))
    assert {k.mode for k in history} == {"checkpoint write", "steps", "start-up"}, summary
    assert sum(k.resumed is not None for k in history) >= 5, summary
    # Once training runs, the other rank notices its peer's death at its next collective and
    # fails on its own (srun would otherwise kill it): no hang, and never a success.
    for kill in history:
        if kill.mode != "start-up":
            assert kill.survivor_status not in (None, 0), summary
    # A job started after a kill that left a half-written checkpoint resumed from an older one.
    for before, after in zip(history, history[1:], strict=False):
        if before.partial_left and after.resumed is not None:
            assert after.resumed < min(before.partial_left), summary

    start = newest_complete(killed)
    final = Ranks(train_args(killed, *SETTINGS), tmp_path / "out-final")
    try:
        assert final.wait(300) == [0, 0], final.report()
    finally:
        final.kill()
    assert RESUMED.findall(final.output(0)) == [(str(start), str(step_of(start)))]

    # Nothing half-written is left, and only complete checkpoints are kept.
    assert partial_folders(killed) == []
    assert all(is_complete(path) for path in checkpoints(killed)), checkpoints(killed)
    end_a, end_b = checkpoints(straight)[-1], checkpoints(killed)[-1]
    assert end_a.name == end_b.name == f"step-{TOTAL_STEPS:08d}"
    for model in ("generator", "discriminator"):
        a, b = ddp_state(end_a, model)["model"], ddp_state(end_b, model)["model"]
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{model}.{key} differs from the uninterrupted run"
    # The killed run's curve: each step's last logged loss (a step redone after a kill is logged
    # again) is the uninterrupted run's, on both ranks.
    for rank in (0, 1):
        reference_rows = {row["step"]: row for row in local_logs(straight, rank)}
        redone_rows = {row["step"]: row for row in local_logs(killed, rank)}
        assert sorted(redone_rows) == list(range(1, TOTAL_STEPS + 1))
        for step_number, row in reference_rows.items():
            assert redone_rows[step_number]["g/total"] == row["g/total"], f"rank {rank} step {step_number}"
            assert redone_rows[step_number]["d/total"] == row["d/total"], f"rank {rank} step {step_number}"


@pytest.mark.slow
def test_a_checkpoint_half_deleted_by_a_kill_while_pruning_is_pruned_later(tmp_path: Path) -> None:
    # A kill during pruning (rank 0 deletes old checkpoints right after the rename) leaves an old
    # step folder without its marker or part of its files.
    run_distgan(train_args(tmp_path, "train.max_steps=3", "checkpoint.every_steps=1", "checkpoint.keep_last=2"))
    old = tmp_path / "checkpoints" / "step-00000002"
    (old / "COMPLETE").unlink()
    shutil.rmtree(old / "generator")
    run_distgan(train_args(tmp_path, "train.max_steps=5", "checkpoint.every_steps=1", "checkpoint.keep_last=2"))
    assert [path.name for path in checkpoints(tmp_path)] == ["step-00000004", "step-00000005"]
