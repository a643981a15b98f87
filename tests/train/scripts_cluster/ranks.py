"""Start one process per rank the way ``srun`` does: no launcher agent in between, rank and
rendezvous in the environment, so each rank's own exit status and signals are visible."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.train.helpers import REPO_ROOT, free_port, subprocess_env

SCRIPTS = Path(__file__).resolve().parent


class Ranks:
    """The processes of one job; stdout and stderr of rank r go to ``out_dir/rank-r.out``."""

    def __init__(self, args: list[str], out_dir: Path, world_size: int = 2, script: str | None = None,
                 **env: str) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        program = [sys.executable, str(SCRIPTS / script)] if script else [sys.executable, "-m", "distgan"]
        port = str(free_port())
        self.out_paths = [out_dir / f"rank-{rank}.out" for rank in range(world_size)]
        self.procs: list[subprocess.Popen] = []
        for rank, out_path in enumerate(self.out_paths):
            rank_env = subprocess_env(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                                      LOCAL_WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1",
                                      MASTER_PORT=port, **env)
            with open(out_path, "w") as out:
                self.procs.append(subprocess.Popen([*program, *args], cwd=REPO_ROOT, env=rank_env,
                                                   stdout=out, stderr=subprocess.STDOUT))

    def output(self, rank: int) -> str:
        return self.out_paths[rank].read_text()

    def alive(self) -> bool:
        return any(proc.poll() is None for proc in self.procs)

    def send(self, sig: int, ranks: list[int] | None = None) -> None:
        for rank in range(len(self.procs)) if ranks is None else ranks:
            if self.procs[rank].poll() is None:
                self.procs[rank].send_signal(sig)

    def wait(self, timeout: float) -> list[int]:
        """Exit statuses (negative: killed by that signal); fails the test after ``timeout``."""
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"ranks still running after {timeout:.0f} s\n{self.report()}") from None
        return [proc.returncode for proc in self.procs]

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()

    def report(self) -> str:
        return "\n".join(f"--- rank {rank} (exit {proc.returncode}) ---\n{self.output(rank)[-3000:]}"
                         for rank, proc in enumerate(self.procs))


@contextmanager
def ranks(args: list[str], out_dir: Path, world_size: int = 2, script: str | None = None,
          **env: str) -> Iterator[Ranks]:
    """``Ranks`` that are killed on the way out, whatever the test did."""
    job = Ranks(args, out_dir, world_size, script, **env)
    try:
        yield job
    finally:
        job.kill()


def wait_for(condition: Callable[[], bool], timeout: float, what: str, job: Ranks | None = None,
             poll: float = 0.01) -> None:
    """Poll until ``condition()`` holds; fail (with the ranks' output) if a rank exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if job is not None and not job.alive():
            raise AssertionError(f"the job ended before {what}\n{job.report()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout:.0f} s" + (f"\n{job.report()}" if job else ""))
        time.sleep(poll)
