"""One job at a time per run directory: a lock file that dies with its holder.

Two jobs writing one run directory lose work silently (each resumes from the other's checkpoints
and overwrites them). ``RUN_DIR/LOCK`` names its holder (host, pid, job id) and is created with
``O_CREAT | O_EXCL``, which is atomic on local file systems and on the shared ones clusters use
(NFSv3+, Lustre, GPFS), unlike ``flock``, which some of them do not propagate between nodes.
While held, a thread refreshes the file's modification time every ``HEARTBEAT_SECONDS``.

A lock is taken over, with a message, when its holder is gone: the same job id (a requeued
SLURM job), a holder process on this host that no longer exists, or no heartbeat for
``STALE_SECONDS`` (a holder on a dead node). Otherwise ``acquire`` raises ``RunDirBusy`` naming
the holder. Rank 0 holds the lock for the whole job.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

LOCK_NAME = "LOCK"
HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 60.0


class RunDirBusy(RuntimeError):
    """Another live job holds the run directory."""


class RunDirUnwritable(RunDirBusy):
    """The run directory cannot be written (read-only, no permission): no job can hold it."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def _describe(holder: dict[str, Any]) -> str:
    job = f", job {holder['job']}" if holder.get("job") else ""
    return f"pid {holder.get('pid')} on {holder.get('host')}{job}"


class RunDirLock:
    def __init__(self, run_dir: Path, job: str | None = None) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.me = {"host": socket.gethostname(), "pid": os.getpid(), "job": job, "since": time.time()}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunDirUnwritable(f"{self.path.parent}: cannot make the run directory ({err.strerror})") from err
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            except OSError as err:  # read-only, or no permission: what the user must change
                raise RunDirUnwritable(f"{self.path.parent}: cannot write the lock file {self.path} ({err.strerror}); "
                                 "a run directory must be writable") from err
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(self.me) + "\n")
                f.flush()
                os.fsync(f.fileno())
            self._thread = threading.Thread(target=self._heartbeat, name="distgan-lock", daemon=True)
            self._thread.start()
            return
        raise RunDirBusy(f"{self.path.parent}: could not take the lock {self.path} (it keeps changing hands)")

    @staticmethod
    def _read_file(path: Path) -> dict[str, Any]:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    def _read(self) -> tuple[dict[str, Any], float] | None:
        try:
            return json.loads(self.path.read_text()), self.path.stat().st_mtime
        except FileNotFoundError:
            return None
        except (OSError, ValueError):  # being written right now: treat as a fresh lock
            return {}, time.time()

    def _stale_because(self, holder: dict[str, Any], refreshed: float) -> str | None:
        if holder.get("job") and holder.get("job") == self.me["job"]:
            return f"it belongs to this job ({holder['job']}), requeued"
        if holder.get("host") == self.me["host"] and isinstance(holder.get("pid"), int) and not _alive(holder["pid"]):
            return f"its process {holder['pid']} no longer exists"
        if time.time() - refreshed > STALE_SECONDS:
            return f"no heartbeat for {time.time() - refreshed:.0f} s"
        return None

    def _take_over_if_stale(self) -> None:
        found = self._read()
        if found is None:
            return  # released meanwhile: try again
        holder, refreshed = found
        why = self._stale_because(holder, refreshed)
        if why is None:
            raise RunDirBusy(f"{self.path.parent} is in use by {_describe(holder)} (lock {self.path}, refreshed "
                             f"{time.time() - refreshed:.0f} s ago); wait for it to finish, or stop it")
        # Move the stale file aside under a name of our own: of two takers only one succeeds.
        aside = self.path.with_name(f"{LOCK_NAME}.stale-{self.me['host']}-{self.me['pid']}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        moved = self._read_file(aside)
        if moved != holder:  # we moved a lock someone took in between: give it back and stop
            os.rename(aside, self.path)
            raise RunDirBusy(f"{self.path.parent} was just taken by {_describe(moved)}")
        aside.unlink(missing_ok=True)
        print(f"[distgan] taking over the lock of {_describe(holder)}: {why}", flush=True)

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                print(f"[distgan] warning: the lock {self.path} was removed while this job holds it", flush=True)
                return

    def release(self) -> None:
        """Remove the lock if this process still holds it."""
        if self._thread is None:
            return
        self._stop.set()
        found = self._read()
        if found is not None and found[0].get("pid") == self.me["pid"] and found[0].get("host") == self.me["host"]:
            self.path.unlink(missing_ok=True)
        self._thread = None
