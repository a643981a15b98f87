"""Running distgan where a metric package cannot be imported."""

from __future__ import annotations

import subprocess
import sys

from tests.train.helpers import REPO_ROOT, subprocess_env


def run_without(module: str, args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """``distgan ARGS`` in a process where ``import MODULE`` fails, as on a platform without it."""
    code = (f"import sys; sys.modules[{module!r}] = None; "
            "from distgan.cli import main; sys.exit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO_ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)
