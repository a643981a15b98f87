"""Thread settings under background load (``distgan bench step --under-load N``).

Why a busy machine made single-process runs an order of magnitude slower is in
``distgan/threads.py``. This measures it: N busy-loop processes keep the cores occupied (as other
jobs on a shared machine do), and ``Trainer.fit`` runs in a fresh child process per setting,
since OpenMP reads its environment once, when torch is loaded:

- **torch's defaults**: no thread variable at all (all cores, OpenMP spinning at its barriers);
- **one thread**: ``OMP_NUM_THREADS=1``, the workaround that was found by hand;
- **distgan's defaults**: what ``distgan`` sets before torch loads (``settle_threads``).

The settings alternate in rounds, so that a change in the other load falls on all of them; each
child reports the median step of its measured steps, and a setting's figure is the median over
rounds.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator

from distgan.threads import settle_threads, torch_default_env

BUSY_LOOP = "while True: pass"


def settings() -> dict[str, dict[str, str]]:
    """Each compared setting's whole environment, built from this process's."""
    plain = torch_default_env()
    ours = dict(plain)
    settle_threads(ours)
    return {"torch defaults": plain, "one thread": {**plain, "OMP_NUM_THREADS": "1"}, "distgan defaults": ours}


@contextlib.contextmanager
def background_load(processes: int) -> Iterator[list[subprocess.Popen]]:
    """``processes`` single-threaded busy loops, stopped (by their own ids) when the block ends."""
    started = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(processes)]
    try:
        yield started
    finally:
        for process in started:
            process.kill()
            process.wait()


def compare(config: str, overrides: list[str], steps: int, warmup: int, rounds: int, load: int,
            timeout: float = 1800, report: Callable[[str], None] = print) -> dict[str, dict]:
    """Per setting: every round's median s/step, and the threads and wait policy the child saw;
    ``report`` gets a line per child as it ends (a round under load can take minutes)."""
    found: dict[str, dict] = {name: {"steps": []} for name in settings()}
    request = json.dumps({"config": config, "overrides": overrides, "steps": steps, "warmup": warmup})
    with background_load(load):
        for r in range(rounds):
            names = list(found) if r % 2 == 0 else list(reversed(found))
            for name in names:
                done = subprocess.run([sys.executable, "-m", "distgan.bench.threads", request],
                                      env=settings()[name], capture_output=True, text=True, timeout=timeout)
                if done.returncode != 0:
                    raise RuntimeError(f"{name}: the timed child failed:\n{done.stderr[-3000:]}")
                child = json.loads(done.stdout.strip().splitlines()[-1])
                found[name]["steps"].append(child.pop("step"))
                report(f"  round {r + 1}, {name}: {found[name]['steps'][-1]:.3f} s/step")
                found[name].update(child)
    for row in found.values():
        row["median"] = statistics.median(row["steps"])
    return found


def _child(request: dict) -> dict:
    """In the child: ``Trainer.fit``'s median step (``distgan.bench.step``) under this environment."""
    import torch

    from distgan.bench.step import bench_distgan
    from distgan.config import load_config

    cfg = load_config(request["config"], request["overrides"])
    step = bench_distgan(cfg, request["steps"], request["warmup"])["step"]
    return {"step": step, "threads": torch.get_num_threads(),
            "wait_policy": os.environ.get("OMP_WAIT_POLICY", "libgomp default (spin)")}


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))), flush=True)
