"""OpenMP's wait policy, chosen before torch is imported: why a busy CPU made a run 10x slower.

torch's CPU kernels run on GNU OpenMP (libgomp) with one thread per core. At the end of every
parallel region the threads meet at a barrier, and libgomp's default is to *spin* there (about
300,000 iterations, ~0.1-1 ms) before sleeping. On an idle machine that saves a wake-up per
region. On a machine whose cores other jobs share, a thread that has been preempted holds up
the region for a scheduler time slice while its partner spins, burning the very CPU the
preempted thread needs; a training step runs thousands of small regions, so the step becomes
5-15x slower than with one thread (issue 23: 5.3-6.8 s against 0.4-0.65 s per step of
configs/tiny.yaml at a load average of 3.5-6). ``OMP_WAIT_POLICY=PASSIVE`` makes a waiting thread
sleep at once: under load it gives the CPU back, and when idle it costs one futex wake-up per
region (1.26-1.45x spinning's step on an idle machine, against 5-31x saved under load:
docs/benchmarks.md). ``distgan bench step --under-load N`` measures the settings side by side.

What is not changed: the number of threads (all cores, torch's default: on an idle machine a
bigger model gains from them), which ``OMP_NUM_THREADS`` or a launcher sets (torchrun sets one
per rank). DataLoader workers already run one thread each (PyTorch's worker loop sets it).
libgomp reads the variable once, when torch loads it, so this must run before ``import torch``:
``distgan.cli.main`` calls it first.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

# A user who set any of these chose a wait policy; distgan then leaves it alone.
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
# Names the variables distgan set itself, so that child processes and the benchmark can tell a
# default from a user's choice.
SET_BY_DISTGAN = "DISTGAN_SET_THREAD_ENV"


def settle_threads(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set OpenMP's passive wait policy where the user has not chosen one; returns what was set."""
    if any(name in environ for name in WAIT_VARIABLES):
        return {}
    chosen = {"OMP_WAIT_POLICY": "PASSIVE"}
    environ.update(chosen)
    environ[SET_BY_DISTGAN] = ",".join(chosen)
    return chosen


def torch_default_env(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """``environ`` without any thread setting: what torch does on its own (all cores, spinning)."""
    dropped = {*WAIT_VARIABLES, "OMP_NUM_THREADS", "MKL_NUM_THREADS", SET_BY_DISTGAN}
    return {name: value for name, value in environ.items() if name not in dropped}
