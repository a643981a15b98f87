"""Naming the ranks a job has lost, when a collective fails because a peer is gone.

A node that dies (power, kernel panic, OOM killer, a SIGKILL) takes its ranks with it, and the
survivors learn of it only as a failed collective: gloo reports "Connection reset by peer" at
once, NCCL after ``dist.timeout_minutes``. That error names a socket, not a rank. So each survivor
answers a roll call in the run directory (which every node shares, as checkpoints need): it
leaves ``RUN_DIR/logs/roll-call/<start>/rank-N`` and waits ``faults.roll_call_seconds`` for the
others.
The ranks that do not answer are the lost ones; every survivor names them and exits with
``PEERS_LOST_EXIT_CODE``. The next start of the job resumes from the newest complete checkpoint.

``<start>`` is agreed when the process group starts, so a roll call never counts the answers of
an earlier incarnation of the job.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch.distributed as dist

from distgan.distributed import ProcessInfo, broadcast_object

PEERS_LOST_EXIT_CODE = 6
# How gloo and NCCL word a failure that a dead peer caused, in the RuntimeErrors they raise.
_PEER_FAILURE_SIGNS = ("Connection reset by peer", "Connection closed by peer", "Broken pipe",
                       "Connection refused", "NCCL communicator was aborted", "Socket Timeout")


class PeersLost(RuntimeError):
    """Ranks of this job are gone; the message names them and what failed."""


def is_peer_failure(err: BaseException) -> bool:
    """Whether ``err`` is a collective (or the process group's store) failing under this rank."""
    if isinstance(err, dist.DistError):
        return True
    return isinstance(err, RuntimeError) and any(sign in str(err) for sign in _PEER_FAILURE_SIGNS)


class RollCall:
    """Every rank builds one at start-up (a collective: rank 0's start time becomes the folder)."""

    def __init__(self, run_dir: Path, info: ProcessInfo, seconds: float) -> None:
        start = broadcast_object(f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}" if info.is_main else None)
        self.folder = Path(run_dir) / "logs" / "roll-call" / start
        self.info = info
        self.seconds = seconds

    def missing(self) -> list[int]:
        """Answer, then wait up to ``seconds`` for every rank to; the ranks that did not."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"rank-{self.info.rank:05d}").write_text(f"{os.uname().nodename} {os.getpid()}\n")
        deadline = time.monotonic() + self.seconds
        while True:
            answered = {int(path.name.split("-")[1]) for path in self.folder.glob("rank-*")}
            missing = sorted(set(range(self.info.world_size)) - answered)
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.2)

    def lost(self, err: BaseException, step: int) -> PeersLost:
        """The error to end this rank with, after the roll call."""
        missing = self.missing()
        who = (f"lost rank(s) {', '.join(map(str, missing))} (no answer to the roll call in "
               f"{self.folder} within {self.seconds:g} s)" if missing
               else "every rank answered the roll call, but a collective failed")
        return PeersLost(f"{who} at step {step}: {type(err).__name__}: {str(err).strip()[:300]}. A node or "
                         "process died; start the job again to resume from the newest complete checkpoint")
