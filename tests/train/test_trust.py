"""What a stranger's checkpoint cannot do, what a damaged one cannot do, and what a stop cannot lose.

Each test starts from a copy of one 4-step run with checkpoints at steps 2 and 4 (a module
fixture), damages or poisons its step-4 checkpoint the way a download, a disk or an attacker
would, and runs distgan on it as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import soundfile
import torch

import distgan
from distgan.checkpoint.format import IncompleteCheckpoint, checkpoint_problem, list_checkpoints
from distgan.distributed import ProcessInfo
from distgan.train.checkpoint import CheckpointWriter
from tests.train.helpers import (
    REPO_ROOT,
    checkpoints,
    command,
    ddp_state,
    poison,
    rewrite_manifest,
    run_distgan,
    subprocess_env,
    train_args,
)
from tests.train.scripts_cluster.ranks import wait_for

STEP4 = Path("checkpoints") / "step-00000004"


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("trusted") / "run"
    run_distgan(train_args(run, "train.max_steps=4", "checkpoint.every_steps=2", "checkpoint.keep_last=5"))
    return run


@pytest.fixture
def run(two_checkpoints: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(two_checkpoints, tmp_path / "run"))


def resume(run_dir: Path, steps: int = 6, extra: tuple[str, ...] | list[str] = (), **kwargs
           ) -> subprocess.CompletedProcess:
    return run_distgan(["train", "--run-dir", str(run_dir), f"train.max_steps={steps}", *extra], check=False,
                       **kwargs)


@pytest.mark.slow
def test_a_pickled_payload_in_a_checkpoint_never_runs(run: Path, tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    poison(run / STEP4 / "generator" / "state.pt", marker)
    rewrite_manifest(run / STEP4)  # a consistent forgery: only the unpickling can tell
    with pytest.raises(IncompleteCheckpoint, match="generator/state.pt: refused to unpickle"):
        distgan.load_generator(run / STEP4)
    wav = tmp_path / "in.wav"
    soundfile.write(wav, torch.zeros(4096).numpy(), 22050)
    for source, status in ((run / STEP4, 2), (run, 0)):  # a run directory falls back to its step 2
        for args in (["export", str(source), str(tmp_path / "g.safetensors")],
                     ["synthesize", "--checkpoint", str(source), str(wav), "--out", str(tmp_path / "out")]):
            done = run_distgan(args, check=False)
            assert done.returncode == status and "refused to unpickle" in done.stdout, done.stdout + done.stderr
    assert distgan.load_generator(run) is not None
    done = resume(run)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"passing over checkpoint {run / STEP4}" in done.stdout
    assert "refused to unpickle it: it pickles io.open, which loading would call" in done.stdout
    assert f"resumed from {run / 'checkpoints' / 'step-00000002'}" in done.stdout
    assert (run / "checkpoints" / "step-00000004.rejected").is_dir()
    assert not marker.exists()
    assert [step for _, step in list_checkpoints(run)] == [6, 4, 2]


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def set_first_weight(value: float):
    """Change one weight and make the marker's digests match again (a consistent forgery)."""
    def damage(path: Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        next(iter(state["model"].values())).view(-1)[0] = value
        torch.save(state, path)
        rewrite_manifest(path.parents[1])

    return damage


@pytest.mark.slow
@pytest.mark.parametrize(("damage", "reported"), [
    (truncate, "discriminator/state.pt has"),
    (flip_a_bit, "discriminator/state.pt is corrupt"),
    (set_first_weight(float("nan")), "non-finite weights in discriminator."),
    (set_first_weight(2.7e36), "the loaded weights differ from the fingerprint saved with them"),
], ids=["truncated", "flipped-bit", "nan-weights", "changed-weights"])
def test_a_damaged_checkpoint_is_reported_and_the_previous_one_resumed(run: Path, damage, reported: str) -> None:
    damage(run / STEP4 / "discriminator" / "state.pt")
    done = resume(run)
    assert done.returncode == 0, done.stderr[-3000:]
    assert reported in done.stdout, done.stdout
    assert f"resumed from {run / 'checkpoints' / 'step-00000002'}" in done.stdout
    # The run went on from step 2: its new step-4 checkpoint has finite weights that verify.
    assert checkpoint_problem(run / STEP4) is None
    assert all(torch.isfinite(t).all() for t in ddp_state(run / STEP4, "discriminator")["model"].values())


def test_pruning_never_removes_the_newest_verified_checkpoint(tmp_path: Path) -> None:
    info = ProcessInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"), is_main=True)
    root = tmp_path / "checkpoints"
    for step in (2, 4, 6):
        (root / f"step-{step:08d}").mkdir(parents=True)
        (root / f"step-{step:08d}" / "COMPLETE").write_text(json.dumps({"step": step, "files": {}}))
    writer = CheckpointWriter(tmp_path, info, keep_last=1, last_good=root / "step-00000002")
    writer.prune()
    assert sorted(p.name for p in root.iterdir()) == ["step-00000002", "step-00000006"]


def start(run_dir: Path, *overrides: str, **popen) -> subprocess.Popen:
    out = open(run_dir.parent / f"{run_dir.name}.out", "w")  # noqa: SIM115 - the process writes it
    return subprocess.Popen(command(train_args(run_dir, "train.max_steps=100000", *overrides)), cwd=REPO_ROOT,
                            env=subprocess_env(), stdout=out, stderr=subprocess.STDOUT, **popen)


def output(run_dir: Path) -> str:
    return (run_dir.parent / f"{run_dir.name}.out").read_text()


def steps_done(run_dir: Path) -> int:
    path = run_dir / "logs" / "rank-00000.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


@pytest.mark.slow
def test_one_job_at_a_time_per_run_directory(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = start(run_dir)
    try:
        wait_for(lambda: steps_done(run_dir) >= 1, 120, "a step of the first job")
        second = run_distgan(train_args(run_dir, "train.max_steps=2"), check=False)
        assert second.returncode == 2
        assert f"is in use by pid {first.pid} on " in second.stderr, second.stderr
    finally:
        first.kill()
        first.wait()
    # The holder died without releasing the lock: the next job takes it over and trains.
    third = run_distgan(train_args(run_dir, "train.max_steps=2"), check=False)
    assert third.returncode == 0, third.stderr[-3000:]
    assert f"taking over the lock of pid {first.pid} on" in third.stdout
    assert f"its process {first.pid} no longer exists" in third.stdout
    assert not (run_dir / "LOCK").exists()  # released at the end


@pytest.mark.slow
def test_ctrl_c_stops_with_a_checkpoint_and_twice_quits_at_once(tmp_path: Path) -> None:
    # Twice: long steps (large batches of long segments), so that the second Ctrl-C lands in the step.
    # Once: the stop comes at the end of whatever step the Ctrl-C lands in, so ordinary steps do.
    long_steps = ("data.batch_size=8", "data.segment_samples=32768")
    for run_dir, presses, status in ((tmp_path / "once", 1, 75), (tmp_path / "twice", 2, 130)):
        job = start(run_dir, "data.num_workers=1", *(long_steps if presses == 2 else ()))
        wait_for(lambda d=run_dir: steps_done(d) >= 1, 120, "a step")
        job.send_signal(signal.SIGINT)
        if presses == 2:
            wait_for(lambda d=run_dir: "Ctrl-C again to quit at once" in output(d), 30, "the first Ctrl-C")
            job.send_signal(signal.SIGINT)
        assert job.wait(120) == status, output(run_dir)
        assert "KeyboardInterrupt" not in output(run_dir) and "Traceback" not in output(run_dir)
    assert "stopped at step" in output(tmp_path / "once") and len(checkpoints(tmp_path / "once")) == 1
    assert "interrupted (Ctrl-C twice)" in output(tmp_path / "twice")


@pytest.mark.slow
def test_sigterm_to_the_whole_process_group_leaves_the_checkpoint_to_the_main_process(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    job = start(run_dir, "data.num_workers=2", start_new_session=True)
    wait_for(lambda: steps_done(run_dir) >= 2, 120, "two steps")
    os.killpg(job.pid, signal.SIGTERM)  # what scancel and container runtimes do
    assert job.wait(120) == 75, output(run_dir)
    assert "killed by signal" not in output(run_dir)
    (checkpoint,) = checkpoints(run_dir)
    assert checkpoint_problem(checkpoint) is None


def fill_up(folder: Path, keep_free: int) -> None:
    free = shutil.disk_usage(folder).free
    with open(folder / "filler", "wb") as f:
        f.write(bytes(max(free - keep_free, 0)))


DISK_FULL_CASES = ["file-size-limit"] + (["tmpfs"] if os.geteuid() == 0 and shutil.which("mount") else [])


@pytest.mark.slow
@pytest.mark.parametrize("limit", DISK_FULL_CASES)
def test_a_full_disk_during_a_checkpoint_says_so_and_leaves_no_partial_folder(run: Path, tmp_path: Path,
                                                                              limit: str) -> None:
    shutil.rmtree(run / STEP4)
    preexec = None
    if limit == "tmpfs":  # a real full disk: a small file system holding the run
        mount = tmp_path / "small"
        mount.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                          capture_output=True).returncode != 0:
            pytest.skip("cannot mount a tmpfs here")
        run = Path(shutil.copytree(run, mount / "run"))
        fill_up(mount, keep_free=1_000_000)  # room for the logs, not for a checkpoint
    else:  # every file this process writes is capped at 400 kB: the checkpoint's state files are not
        def preexec() -> None:
            import resource

            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, 400_000))
    try:
        done = subprocess.run(command(["train", "--run-dir", str(run), "train.max_steps=4"]), cwd=REPO_ROOT,
                              env=subprocess_env(), capture_output=True, text=True, timeout=300,
                              preexec_fn=preexec)
        assert done.returncode == 5, done.stdout[-2000:] + done.stderr[-3000:]
        reason = "disk full: " if limit == "tmpfs" else "the file size limit, ulimit -f, is 400000 bytes"
        assert f"could not write checkpoint step-00000004 in {run / 'checkpoints'}" in done.stderr
        assert f"no room to write ({reason}" in done.stderr, done.stderr
        assert f"the last good checkpoint is {run / 'checkpoints' / 'step-00000002'}" in done.stderr
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000002"]
    finally:
        if limit == "tmpfs":
            subprocess.run(["umount", str(mount)])


@pytest.mark.slow
def test_when_every_checkpoint_is_rejected_the_start_is_refused_until_a_fresh_start_is_asked(run: Path) -> None:
    # Issue 24: two bit-flipped checkpoints were moved aside and training began again at step 0, exit 0.
    config = (run / "config.yaml").read_text()
    for step in (2, 4):
        flip_a_bit(run / "checkpoints" / f"step-0000000{step}" / "discriminator" / "state.pt")
    done = resume(run)
    assert done.returncode == 7, done.stderr[-3000:]
    for step in (4, 2):
        assert (f"step-0000000{step} (rejected: rank 0: incomplete checkpoint (discriminator/state.pt is corrupt"
                in done.stderr), done.stderr
        reason = (run / "checkpoints" / f"step-0000000{step}.rejected" / "REJECTED").read_text()
        assert "discriminator/state.pt is corrupt" in reason
    assert "nothing was trained; to start again from step 0 in this run directory, add --fresh-start" in done.stderr
    assert (run / "config.yaml").read_text() == config and not list_checkpoints(run)
    again = resume(run)  # the next plain start is refused too, naming what the first one rejected
    assert again.returncode == 7 and "step-00000004.rejected (rejected by an earlier start: " in again.stderr
    fresh = run_distgan(["train", "--run-dir", str(run), "--fresh-start", "train.max_steps=2"], check=False)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert "--fresh-start: no checkpoint can be resumed" in fresh.stdout and "resumed from" not in fresh.stdout
    assert [step for _, step in list_checkpoints(run)] == [2]
    assert (run / "checkpoints" / "step-00000004.rejected").is_dir()  # kept for a person to look at


def trainer_position(checkpoint: Path) -> tuple[int, int, int]:
    state = torch.load(checkpoint / "trainer.pt", map_location="cpu", weights_only=True)["state"]
    return state["epoch"], state["batch_in_epoch"], state["batch_size"]


@pytest.mark.slow
def test_a_resume_with_another_batch_size_keeps_the_data_position(run: Path) -> None:
    # The fixture's run: 4 steps at batch 2 (22 batches an epoch); issue 24 saw `skip_batches=5 outside
    # [0, 3]` with config.yaml already rewritten, or 5 clips of the epoch silently never seen.
    shutil.rmtree(run / "checkpoints" / "step-00000002")
    up = resume(run, 23, extra=["data.batch_size=8"])  # 18 batches of 2 end the epoch, then batch 8
    assert up.returncode == 0, up.stderr[-3000:]
    assert ("data.batch_size 2 -> 8: the checkpoint is at batch 4 of epoch 0; its other 18 batches are read "
            "at batch size 2") in up.stdout
    assert trainer_position(run / "checkpoints" / "step-00000023") == (1, 1, 8)
    assert "batch_size: 8" in (run / "config.yaml").read_text()
    down = resume(run, 25, extra=["data.batch_size=3", "train.grad_accum=2"])  # 5 of epoch 1's 6 batches left
    assert down.returncode == 0, down.stderr[-3000:]
    assert "data.batch_size 8 -> 3: the checkpoint is at batch 1 of epoch 1; its other 5 batches" in down.stdout
    # Steps 24-25 take 4 micro batches: the epoch's 5 remaining ones at batch 8 still hold one.
    assert trainer_position(run / "checkpoints" / "step-00000025") == (1, 5, 8)
