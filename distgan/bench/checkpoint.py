"""What verifying a checkpoint costs, on a checkpoint of the size people train (``distgan bench checkpoint``).

Builds the models of a recipe (default: HiFi-GAN V1, 14M + 71M parameters) with AdamW states
filled by one update, then, in one process and folder, times:

- **save**: ``torch.save`` of both engine states to their files (what a DDP checkpoint writes),
  and what a verifiable checkpoint adds: each file's XXH3-128 digest (hashed from the page cache
  through mmap) and fsync;
- **load**: weights-only ``torch.load`` of both states, and the digests a resume verifies first;
  and, for reference, the memory-mapped weights-only unpickling check that DeepSpeed's files
  also get before DeepSpeed loads them.

Each is the median of ``repeats`` rounds, alternating. With ``cold`` (Linux, root: it drops the
page cache), the load is also timed as a resume meets it, from the disk: a plain load, against
the verification read (which brings the files in) followed by the load.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from distgan.checkpoint.files import digest, load_file, save_file
from distgan.config import Config
from distgan.families import build_models


def _engine_states(cfg: Config) -> dict[str, dict]:
    """Model and AdamW state of G and D after one update, as a DDP engine saves them."""
    torch.manual_seed(0)
    states = {}
    for name, model in zip(("generator", "discriminator"), build_models(cfg), strict=True):
        optimizer = torch.optim.AdamW(model.parameters())
        for p in model.parameters():
            p.grad = torch.randn_like(p)
        optimizer.step()
        states[name] = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": None}
    return states


def _timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def drop_page_cache() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def bench_checkpoint(cfg: Config, repeats: int = 3, cold: bool = False) -> dict[str, float]:
    """Median seconds of each part, and the checkpoint's size in bytes."""
    states = _engine_states(cfg)
    keys = ("save", "digest_fsync", "load", "digest", "mmap_check") + (("cold_load", "cold_verified_load") if cold else ())
    times: dict[str, list[float]] = {key: [] for key in keys}
    with tempfile.TemporaryDirectory(prefix="distgan-bench-ckpt-") as folder:
        paths = {name: Path(folder) / f"{name}.pt" for name in states}
        for _ in range(repeats):
            times["save"].append(_timed(lambda: [save_file(state, paths[name]) for name, state in states.items()]))
            times["digest_fsync"].append(_timed(lambda: [digest(path, fsync=True) for path in paths.values()]))
            times["load"].append(_timed(lambda: [load_file(path) for path in paths.values()]))
            times["digest"].append(_timed(lambda: [digest(path) for path in paths.values()]))
            times["mmap_check"].append(_timed(lambda: [load_file(path, mmap=True) for path in paths.values()]))
            if cold:
                drop_page_cache()
                times["cold_load"].append(_timed(lambda: [load_file(path) for path in paths.values()]))
                drop_page_cache()
                times["cold_verified_load"].append(_timed(lambda: [(digest(path), load_file(path))
                                                                   for path in paths.values()]))
        size = sum(path.stat().st_size for path in paths.values())
    return {**{key: statistics.median(values) for key, values in times.items()}, "bytes": float(size)}
