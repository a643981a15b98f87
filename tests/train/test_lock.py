"""The run-directory lock: one holder, taken over only from a holder that is gone."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from distgan.train import lock as lock_module
from distgan.train.lock import LOCK_NAME, RunDirBusy, RunDirLock


def holder_file(run_dir: Path, **holder: object) -> Path:
    path = run_dir / LOCK_NAME
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(holder))
    return path


def test_a_live_holder_keeps_it_and_is_named(tmp_path: Path) -> None:
    first = RunDirLock(tmp_path, job="100")
    first.acquire()
    try:
        with pytest.raises(RunDirBusy, match=f"is in use by pid {os.getpid()} on .*, job 100"):
            RunDirLock(tmp_path, job="200").acquire()
    finally:
        first.release()
    assert not (tmp_path / LOCK_NAME).exists()
    RunDirLock(tmp_path).acquire()  # free again


def test_a_dead_local_holder_is_taken_over(tmp_path: Path, capsys) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    holder_file(tmp_path, host=socket.gethostname(), pid=dead.pid, job=None)
    taker = RunDirLock(tmp_path)
    taker.acquire()
    assert f"its process {dead.pid} no longer exists" in capsys.readouterr().out
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    taker.release()


def test_the_same_job_requeued_takes_over_a_holder_on_another_node(tmp_path: Path, capsys) -> None:
    holder_file(tmp_path, host="node-that-died", pid=1, job="4242")
    RunDirLock(tmp_path, job="4242").acquire()
    assert "it belongs to this job (4242), requeued" in capsys.readouterr().out
    with pytest.raises(RunDirBusy):  # another job does not
        RunDirLock(tmp_path, job="4243").acquire()


def test_a_holder_on_another_node_without_heartbeat_is_stale(tmp_path: Path, capsys,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = holder_file(tmp_path, host="elsewhere", pid=1, job="1")
    with pytest.raises(RunDirBusy, match="refreshed 0 s ago"):
        RunDirLock(tmp_path, job="2").acquire()
    old = time.time() - lock_module.STALE_SECONDS - 5
    os.utime(path, (old, old))
    RunDirLock(tmp_path, job="2").acquire()
    assert "no heartbeat for" in capsys.readouterr().out


def test_the_heartbeat_keeps_the_lock_fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock_module, "HEARTBEAT_SECONDS", 0.05)
    held = RunDirLock(tmp_path)
    held.acquire()
    old = time.time() - 1000
    os.utime(tmp_path / LOCK_NAME, (old, old))
    time.sleep(0.3)
    assert time.time() - (tmp_path / LOCK_NAME).stat().st_mtime < 1
    held.release()
