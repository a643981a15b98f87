"""Running distgan as a user would (a subprocess per launch mode) and reading what it wrote."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY = REPO_ROOT / "configs" / "tiny.yaml"
LAUNCH = REPO_ROOT / "launch"
SCRIPTS = Path(__file__).resolve().parent / "scripts_cluster"

# configs/tiny.yaml made cheaper still for tests: short segments, small batches, no workers,
# every scalar logged every step, nothing periodic unless a test asks for it, a short roll call.
FAST = [
    "data.batch_size=2",
    "data.segment_samples=4096",
    "data.num_workers=0",
    "log.progress_bar=false",
    "log.every_steps=1",
    "log.val_every_steps=0",
    "checkpoint.every_steps=0",
    "faults.watchdog_minutes=0",
    "faults.roll_call_seconds=2",  # a survivor of a killed rank exits 2 s after noticing
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"})
    env.update(extra)
    return env


def command(args: list[str], launcher: str | None = None, nproc: int = 2, script: str | None = None) -> list[str]:
    """``distgan ARGS`` as one process, under torchrun, or under ``accelerate launch`` with a
    config from launch/ (``launcher="accelerate:cpu_zero2.yaml"``); ``script`` names a program in
    tests/train/scripts_cluster/ to run instead of ``-m distgan``."""
    program = [str(SCRIPTS / script)] if script else ["-m", "distgan"]
    if launcher is None:
        return [sys.executable, *program, *args]
    if launcher == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                "--master_port", str(free_port()), *program, *args]
    if launcher.startswith("accelerate:"):
        config = LAUNCH / launcher.split(":", 1)[1]
        return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
                "--main_process_port", str(free_port()), *program, *args]
    raise ValueError(launcher)


def descendants(pid: int) -> list[int]:
    """``pid`` and every process under it, whatever session or group they moved to (torchrun's
    workers leave their launcher's group)."""
    rows = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout.split("\n")
    children: dict[int, list[int]] = {}
    for row in filter(None, (line.split() for line in rows)):
        children.setdefault(int(row[1]), []).append(int(row[0]))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo.extend(children.get(found[-1], []))
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and everything under it at once."""
    for process in descendants(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(process, signal.SIGKILL)


def two_ranks(script: Path, out: Path, timeout: float = 120) -> None:
    """Run ``script OUT`` as ranks 0 and 1 of a gloo job, started directly (torchrun's own start-up
    costs seconds), to the end; both must exit 0 (their output is the assertion's message)."""
    env = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    processes = [subprocess.Popen([sys.executable, str(script), str(out)], env=subprocess_env(RANK=str(rank), **env),
                                  cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for rank in (0, 1)]
    try:
        outputs = [process.communicate(timeout=timeout)[0] for process in processes]
    finally:
        for process in processes:
            kill_tree(process.pid)
    assert [p.returncode for p in processes] == [0, 0], outputs


def run_distgan(args: list[str], launcher: str | None = None, nproc: int = 2, timeout: float = 300,
                check: bool = True, script: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """Run distgan to the end; a run that outlives ``timeout`` (or the test's own timeout) is
    killed with every process it started, so no training is left running behind a failed test."""
    argv = command(args, launcher, nproc, script)
    process = subprocess.Popen(argv, cwd=REPO_ROOT, env=subprocess_env(**env), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException:
        kill_tree(process.pid)
        process.communicate()
        raise
    done = subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
    if check and done.returncode != 0:
        raise AssertionError(f"distgan {' '.join(args)} exited {done.returncode}\n"
                             f"--- stdout ---\n{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-8000:]}")
    return done


def train_args(run_dir: Path, *overrides: str, config: Path = TINY) -> list[str]:
    return ["train", "--config", str(config), "--run-dir", str(run_dir), *FAST, *overrides]


def local_logs(run_dir: Path, rank: int = 0) -> list[dict]:
    """Each rank's own unreduced scalars, one dict per log step."""
    path = Path(run_dir) / "logs" / f"rank-{rank:05d}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def event_files(run_dir: Path) -> list[Path]:
    return sorted(Path(run_dir).rglob("events.out.tfevents.*"))


def read_events(run_dir: Path):
    """TensorBoard's own reader over the run's event file(s)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (path,) = event_files(run_dir)
    events = EventAccumulator(str(path), size_guidance={"scalars": 0, "audio": 0, "images": 0})
    events.Reload()
    return events


def scalars(run_dir: Path) -> dict[str, dict[int, float]]:
    """Every logged scalar by its metric name (``g/mel``, not TensorBoard's ``losses/g/mel``)."""
    from distgan.train.board import metric_name

    events = read_events(run_dir)
    return {metric_name(tag): {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}


def checkpoints(run_dir: Path) -> list[Path]:
    return sorted((Path(run_dir) / "checkpoints").glob("step-*"))


def rank_state(checkpoint: Path, rank: int) -> dict:
    return torch.load(checkpoint / "ranks" / f"rank-{rank:05d}.pt", map_location="cpu", weights_only=False)


def ddp_state(checkpoint: Path, model: str) -> dict:
    """A DDP (or single-process) checkpoint's model, optimizer and scaler state."""
    return torch.load(checkpoint / model / "state.pt", map_location="cpu", weights_only=False)


class TouchOnLoad:
    """Unpickling this creates ``path``: a harmless stand-in for code a stranger's file could run."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def poison(file: Path, marker: Path) -> None:
    """Add a ``TouchOnLoad`` object to a checkpoint file's pickled dict, keeping the rest."""
    state = torch.load(file, map_location="cpu", weights_only=False)
    state["payload"] = TouchOnLoad(marker)
    torch.save(state, file)


def rewrite_manifest(checkpoint: Path) -> None:
    """Make the completion marker describe the files as they are now, as a stranger who edited a
    checkpoint would: the digests then match, and only what is inside the files can betray it."""
    from distgan.checkpoint.files import digest

    marker = checkpoint / "COMPLETE"
    meta = json.loads(marker.read_text())
    meta["files"] = {name: digest(checkpoint / name) for name in meta["files"]}
    marker.write_text(json.dumps(meta) + "\n")
