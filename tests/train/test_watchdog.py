"""The watchdog: a rank that makes no progress for ``faults.watchdog_minutes`` says where it is
stuck (and writes its stacks to ``RUN_DIR/logs/watchdog-rank-N.txt``) and exits with 3."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from distgan.cluster import REQUEUE_EXIT_CODE
from distgan.train.watchdog import WATCHDOG_EXIT_CODE, Watchdog
from tests.train.helpers import REPO_ROOT, subprocess_env, train_args
from tests.train.scripts_cluster.ranks import ranks

LIMIT_MINUTES = 0.02  # 1.2 s

STALLS = f"""
import sys, time
from pathlib import Path
from distgan.train.watchdog import Watchdog

dog = Watchdog({LIMIT_MINUTES}, rank=3, log_dir=Path(sys.argv[1]))
dog.beat("waiting for data", step=41)
print("[test] step 41 done")  # buffered: stdout is a pipe, as it is a file under SLURM

def reading_a_dead_shard():
    time.sleep(60)

reading_a_dead_shard()
"""

KEEPS_BEATING = f"""
import sys, time
from pathlib import Path
from distgan.train.watchdog import Watchdog

dog = Watchdog({LIMIT_MINUTES}, rank=0, log_dir=Path(sys.argv[1]))
start = time.monotonic()
while time.monotonic() - start < 3.0:  # well past the limit, beating all along
    dog.beat("training step", step=1)
    time.sleep(0.1)
dog.close()
time.sleep(2.0)  # past the limit again, but closed
"""


def run_python(code: str, log_dir: Path) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code, str(log_dir)], cwd=REPO_ROOT,
                          env=subprocess_env(PYTHONUNBUFFERED=""), capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - start


def test_a_stalled_process_reports_its_phase_and_stacks_and_exits_3(tmp_path: Path) -> None:
    done, seconds = run_python(STALLS, tmp_path)
    assert done.returncode == WATCHDOG_EXIT_CODE, done.stderr
    assert LIMIT_MINUTES * 60 <= seconds < 30
    assert "[distgan watchdog] rank 3 made no progress" in done.stderr
    assert "at step 41, phase: waiting for data; exiting with 3" in done.stderr
    report = (tmp_path / "watchdog-rank-00003.txt").read_text()
    assert report.startswith("[distgan watchdog] rank 3 made no progress")
    assert "reading_a_dead_shard" in report  # the main thread's stack shows where it hangs
    assert done.stdout == "[test] step 41 done\n"  # printed before the hang, not lost on exit


@pytest.mark.slow
def test_beats_and_close_keep_a_process_alive(tmp_path: Path) -> None:
    done, seconds = run_python(KEEPS_BEATING, tmp_path)
    assert done.returncode == 0, done.stderr
    assert seconds > 5.0  # it outlived the limit several times over
    assert not list(tmp_path.iterdir())


def test_zero_minutes_starts_no_watchdog(tmp_path: Path) -> None:
    before = {thread.name for thread in threading.enumerate()}
    dog = Watchdog(0, rank=0, log_dir=tmp_path)
    assert "distgan-watchdog" not in before | {thread.name for thread in threading.enumerate()}
    dog.close()


@pytest.mark.slow
def test_a_rank_stalled_in_its_data_brings_the_job_down(tmp_path: Path) -> None:
    # Rank 1's data source hangs at step 3, so rank 0 waits for it inside the training step's
    # collectives. Both watchdogs run out (limit 3 s) at about the same time: rank 1's always
    # fires; rank 0's either ends it too or loses the race to its collective, which fails as
    # soon as rank 1 is gone. Either way the job ends within seconds, not at its time limit.
    run_dir = tmp_path / "run"
    start = time.monotonic()
    with ranks(train_args(run_dir, "train.max_steps=1000", "faults.watchdog_minutes=0.05"), tmp_path / "out",
               script="faulty_train.py", STALL_RANK="1", STALL_STEP="3", STALL_SECONDS="600") as job:
        statuses = job.wait(120)
        report = job.report()
    assert time.monotonic() - start < 90
    assert "data stalls at step 3" in job.output(1)
    assert statuses[1] == WATCHDOG_EXIT_CODE, report
    stalled = (run_dir / "logs" / "watchdog-rank-00001.txt").read_text()
    assert "rank 1 made no progress" in stalled and "at step 2, phase: waiting for data" in stalled
    assert "stalling_batches" in stalled  # where rank 1's main thread is
    assert "rank 1 made no progress" in job.output(1) and "phase: waiting for data" in job.output(1)
    if statuses[0] == WATCHDOG_EXIT_CODE:
        waiting = (run_dir / "logs" / "watchdog-rank-00000.txt").read_text()
        assert "rank 0 made no progress" in waiting and "phase: training step" in waiting
    else:  # its collective failed first (its watchdog may have begun its report meanwhile)
        assert statuses[0] not in (0, REQUEUE_EXIT_CODE), report
        assert "Connection closed by peer" in job.output(0) or "Connection reset by peer" in job.output(0), report
