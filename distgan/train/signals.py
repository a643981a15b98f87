"""Stop requests: a signal or a stop file sets a flag; the loop acts on it at a step boundary.

The handler only records the request, so a second signal while a checkpoint is being written
cannot interrupt or corrupt it. Sources:

- ``SIGUSR1`` (SLURM's ``--signal=B:USR1@N`` forwarded by the sbatch script, or torchrun's agent
  when ``PET_SIGNALS_TO_HANDLE`` includes it): stop and ask to be requeued;
- ``SIGTERM`` (preemption, ``scancel``, the elastic agent shutting down) and ``SIGINT``
  (Ctrl-C): stop, no requeue request (a preempting scheduler requeues by itself; a cancelled job
  must stay cancelled). A second Ctrl-C does not wait: it raises ``KeyboardInterrupt`` at once;
- a file ``RUN_DIR/STOP`` (``touch`` it; its content ``requeue`` asks for a requeue): what the
  sbatch scripts use, because it reaches every rank on every node without going through the
  launchers, whose agents kill workers 30 s after forwarding a signal.

Every rank polls at the end of each step, and the step's one agreement (``skips.py``) makes all
ranks agree. DataLoader workers ignore these signals (``ignore_stop_signals``): a signal sent to
the whole process group (``scancel``, a container runtime, Ctrl-C in a terminal) must not kill
them before the main process has written its checkpoint.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

REQUEUE_SIGNALS = (signal.SIGUSR1,)
STOP_SIGNALS = (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT)
STOP_FILE = "STOP"


class StopRequest:
    def __init__(self, run_dir: Path, install: bool = True) -> None:
        self.stop_file = Path(run_dir) / STOP_FILE
        self.signal: int | None = None
        self.extra_signals = 0
        self._previous: dict[int, object] = {}
        if install:
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is None:
            self.signal = signum
            if signum == signal.SIGINT:
                print("\n[distgan] stopping after this step with a checkpoint (Ctrl-C again to quit at once)",
                      flush=True)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt  # a person asked twice: do not wait for the checkpoint
        else:
            self.extra_signals += 1  # already stopping: nothing to redo, nothing to interrupt

    def __call__(self) -> bool:
        return self.signal is not None or self.stop_file.exists()

    @property
    def wants_requeue(self) -> bool:
        if self.signal in REQUEUE_SIGNALS:
            return True
        try:
            return self.stop_file.read_text().strip() == "requeue"
        except OSError:
            return False

    def describe(self) -> str:
        if self.signal is not None:
            return signal.Signals(self.signal).name
        return f"stop file {self.stop_file}"

    def consume_stop_file(self) -> None:
        """Remove the stop file so that the resumed job does not stop at once."""
        self.stop_file.unlink(missing_ok=True)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def ignore_stop_signals(worker_id: int = 0) -> None:
    """In a DataLoader worker: leave stop signals to the main process (a ``worker_init_fn``)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
