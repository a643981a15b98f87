"""What verifying a checkpoint costs, on a checkpoint of the size people train (``distgan bench checkpoint``).

Builds the models of a recipe (default: HiFi-GAN V1, 14M + 71M parameters) with AdamW states
filled by one update, then, in one process and folder, times:

- **save**: ``torch.save`` of both engine states (what a DDP checkpoint writes), then the two
  things a verifiable checkpoint adds: reading each file back for its XXH3-128 digest, and fsync;
- **load**: weights-only ``torch.load`` of both states, and what a verified resume adds before
  it: the digests again and the weights-only unpickling check (memory-mapped).

Each is the median of ``repeats`` rounds, alternating, after the page cache holds the files (a
resume usually reads a checkpoint written minutes to days ago; from a cold disk both the load
and the digests are I/O and the ratio is smaller).
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
from distgan.models.discriminators import Discriminators
from distgan.models.generator import HiFiGANGenerator


def _engine_states(cfg: Config) -> dict[str, dict]:
    """Model and AdamW state of G and D after one update, as a DDP engine saves them."""
    torch.manual_seed(0)
    states = {}
    for name, model in (("generator", HiFiGANGenerator(cfg.model.generator, cfg.audio.n_mels)),
                        ("discriminator", Discriminators(cfg.model.discriminator))):
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


def bench_checkpoint(cfg: Config, repeats: int = 3) -> dict[str, float]:
    """Median seconds of each part, and the checkpoint's size in bytes."""
    states = _engine_states(cfg)
    times: dict[str, list[float]] = {key: [] for key in ("write", "digest", "fsync", "load", "verify")}
    with tempfile.TemporaryDirectory(prefix="distgan-bench-ckpt-") as folder:
        paths = {name: Path(folder) / f"{name}.pt" for name in states}
        for _ in range(repeats):
            times["write"].append(_timed(lambda: [save_file(state, paths[name]) for name, state in states.items()]))
            times["digest"].append(_timed(lambda: [digest(path) for path in paths.values()]))
            times["fsync"].append(_timed(lambda: [_fsync(path) for path in paths.values()]))
            times["load"].append(_timed(lambda: [load_file(path) for path in paths.values()]))
            times["verify"].append(_timed(lambda: [(digest(path), load_file(path, mmap=True))
                                                   for path in paths.values()]))
        size = sum(path.stat().st_size for path in paths.values())
    return {**{key: statistics.median(values) for key, values in times.items()}, "bytes": float(size)}


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())
