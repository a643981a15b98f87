"""A build lock left by a killed build is removed with a message; one being built is waited for."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from distgan.train.build_lock import STALE_SECONDS, check_build_locks


def lock_in(root: Path, op: str, age: float) -> Path:
    lock = root / "py311_cpu" / op / "lock"
    lock.parent.mkdir(parents=True)
    lock.touch()
    then = time.time() - age
    os.utime(lock, (then, then))
    return lock


def test_stale_locks_go_and_held_ones_stay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    killed = lock_in(tmp_path, "deepspeed_shm_comm", STALE_SECONDS + 600)
    building = lock_in(tmp_path, "cpu_adam", STALE_SECONDS + 600)
    fresh = lock_in(tmp_path, "fused_adam", 5)
    compiler = subprocess.Popen(["sleep", "30"], cwd=building.parent)  # as ninja works in the op's folder
    try:
        reports: list[str] = []
        held = check_build_locks(reports.append)
    finally:
        compiler.kill()
        compiler.wait()
    assert not killed.exists() and sorted(held) == sorted([building, fresh])
    assert any("removed a stale build lock" in r and "deepspeed_shm_comm" in r for r in reports)
    assert any("cpu_adam is being built by another process" in r for r in reports)
