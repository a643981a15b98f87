"""Build locks of C++/CUDA ops that torch compiles on first use, checked before DeepSpeed starts.

torch builds an extension (DeepSpeed's CPU Adam for ZeRO-Offload, for instance) under
``~/.cache/torch_extensions/<py>_<cuda>/<op>/`` (or ``$TORCH_EXTENSIONS_DIR``) behind a ``lock``
file that names no owner. A process killed during the build leaves the lock behind, and every
later run on the machine then waits on it forever without a word. distgan skips the one op it
would build on CPU (``deepspeed_engine._skip_shared_memory_op``); for the others this module
says what a run is about to wait on, and removes a lock whose builder is gone: torch runs the
compiler (ninja) inside the op's folder, so a lock older than ``STALE_SECONDS`` with no process
working in that folder has no holder.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

STALE_SECONDS = 60.0


def extensions_root() -> Path:
    return Path(os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions")


def _working_in(folder: Path) -> bool:
    """Whether any process's working directory is ``folder`` or below it (Linux /proc)."""
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            cwd = Path(os.readlink(proc / "cwd"))
            if cwd == folder or folder in cwd.parents:
                return True
    return False


def check_build_locks(report=print) -> list[Path]:
    """Report every build lock under the extensions root; remove the stale ones. Returns the
    locks still held (a build in progress: the run will wait for it, as it should)."""
    held = []
    root = extensions_root()
    for lock in sorted(root.glob("*/*/lock")) + sorted(root.glob("*/lock")):
        with contextlib.suppress(FileNotFoundError):
            age = time.time() - lock.stat().st_mtime
            if age > STALE_SECONDS and not _working_in(lock.parent.resolve()):
                lock.unlink()
                report(f"[distgan] removed a stale build lock {lock} ({age / 60:.0f} min old, no process building "
                       f"{lock.parent.name}: a build was killed); the op is built again")
                continue
            held.append(lock)
            report(f"[distgan] {lock.parent.name} is being built by another process ({lock}, {age:.0f} s): "
                   "this run waits for it")
    return held
