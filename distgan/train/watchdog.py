"""Exit instead of hanging: a rank that makes no progress for too long reports itself and dies.

A hung collective or a dead data source otherwise holds every GPU of the job until the time
limit. The loop calls ``beat(phase)`` as it enters each phase (``trainer.PHASES``: waiting for
data, the generator forward, the D and G updates, reducing metrics, validation, agreeing on a
stop, checkpoint); a daemon thread checks the time since the last beat. When it exceeds the
limit, the rank prints (and writes to ``RUN_DIR/logs/watchdog-rank-N.txt``) the phase it is stuck
in and exits with ``WATCHDOG_EXIT_CODE``. The rank that stalled says e.g. "waiting for data"; the
others say they are inside an update, waiting for it in a collective.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import sys
import threading
import time
from pathlib import Path

WATCHDOG_EXIT_CODE = 3


class Watchdog:
    def __init__(self, minutes: float, rank: int, log_dir: Path, poll_seconds: float = 5.0) -> None:
        self.limit = minutes * 60.0
        self.rank = rank
        self.log_path = Path(log_dir) / f"watchdog-rank-{rank:05d}.txt"
        self.poll = min(poll_seconds, max(self.limit / 4, 0.05))
        self.phase = "starting"
        self.step = 0
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.limit > 0:
            self._thread = threading.Thread(target=self._run, name="distgan-watchdog", daemon=True)
            self._thread.start()

    def beat(self, phase: str, step: int | None = None) -> None:
        self.phase = phase
        if step is not None:
            self.step = step
        self._last = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            idle = time.monotonic() - self._last
            if idle > self.limit:
                message = (f"[distgan watchdog] rank {self.rank} made no progress for {idle / 60:.1f} min "
                           f"at step {self.step}, phase: {self.phase}; exiting with {WATCHDOG_EXIT_CODE}")
                print(message, file=sys.stderr, flush=True)
                try:
                    self.log_path.parent.mkdir(parents=True, exist_ok=True)
                    with open(self.log_path, "w") as f:
                        f.write(message + "\n\nPython stacks:\n")
                        f.flush()
                        faulthandler.dump_traceback(file=f, all_threads=True)
                except OSError:
                    pass
                _flush_output()
                os._exit(WATCHDOG_EXIT_CODE)

    def close(self) -> None:
        self._stop.set()


def _flush_output(timeout: float = 5.0) -> None:
    """Flush what the process printed before it hung: ``os._exit`` drops buffered output, and
    under SLURM stdout is a file, so the last lines before a hang would be lost. In a thread of
    its own, because a stuck main thread may hold a stream's lock; then it is given up."""
    def flush() -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # closed or broken: nothing to save
                stream.flush()

    thread = threading.Thread(target=flush, name="distgan-watchdog-flush", daemon=True)
    thread.start()
    thread.join(timeout)
