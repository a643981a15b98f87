"""Atomic, self-describing checkpoints in ``RUN_DIR/checkpoints/step-NNNNNNNN``.

A checkpoint is written into a hidden temporary folder by every rank (each engine into its own
subfolder: two DeepSpeed engines in one folder collide on ``latest`` and the tag), then, after a
barrier, rank 0 writes the ``COMPLETE`` marker last and renames the folder into place. A crash or
SIGKILL at any moment therefore leaves either the previous checkpoints untouched plus a hidden
folder that is never loaded, or a complete new one. Older checkpoints are pruned only after a
newer one is complete.

Layout::

    step-00001000/
      generator/          engine state (state.pt for DDP, zero/ for DeepSpeed)
      discriminator/
      trainer.pt          step, epoch, data position, counters (rank 0)
      ranks/rank-00000.pt RNG states and a weight fingerprint, one file per rank
      config.yaml         the resolved config of the run
      COMPLETE            JSON: step, world size, ZeRO stage; written last
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distgan.train import distributed
from distgan.train.engine import ModelEngine, ProcessInfo, checkpoint_files_complete

MARKER = "COMPLETE"
_PREFIX = "step-"
_TMP_PREFIX = ".tmp-step-"


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


@dataclass
class Checkpoint:
    path: Path
    step: int
    meta: dict[str, Any]

    def trainer_state(self) -> dict[str, Any]:
        return torch.load(self.path / "trainer.pt", map_location="cpu", weights_only=False)

    def rank_state(self, rank: int) -> dict[str, Any] | None:
        path = self.path / "ranks" / f"rank-{rank:05d}.pt"
        return torch.load(path, map_location="cpu", weights_only=False) if path.is_file() else None


def why_incomplete(path: Path, world_size: int | None = None) -> str | None:
    """Why ``path`` must not be loaded, or None when it is a complete checkpoint."""
    marker = path / MARKER
    if not marker.is_file():
        return "no completion marker"
    try:
        meta = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError) as err:
        return f"unreadable completion marker ({err})"
    if not (path / "trainer.pt").is_file():
        return "trainer.pt is missing"
    written_by = int(meta.get("world_size", 1))
    for engine in ("generator", "discriminator"):
        reason = checkpoint_files_complete(path / engine, written_by)
        if reason:
            return reason
    if world_size is not None and meta.get("deepspeed_stage") is not None and written_by != world_size:
        return (f"written by {written_by} DeepSpeed ranks, this run has {world_size}: ZeRO partitions "
                "do not match; convert it with DeepSpeed's ds_to_universal.py or resume with "
                f"{written_by} ranks")
    return None


def list_checkpoints(run_dir: Path) -> list[tuple[Path, int]]:
    """All ``step-*`` folders, newest first (complete or not)."""
    root = checkpoint_dir(run_dir)
    found = []
    if root.is_dir():
        for path in root.iterdir():
            if path.is_dir() and path.name.startswith(_PREFIX) and path.name[len(_PREFIX):].isdigit():
                found.append((path, int(path.name[len(_PREFIX):])))
    return sorted(found, key=lambda item: item[1], reverse=True)


def latest_checkpoint(run_dir: Path, world_size: int | None = None,
                      report: Any = print) -> Checkpoint | None:
    """The newest complete checkpoint; incomplete ones are reported and passed over."""
    for path, step in list_checkpoints(run_dir):
        reason = why_incomplete(path, world_size)
        if reason is None:
            return Checkpoint(path, step, json.loads((path / MARKER).read_text()))
        if reason.startswith("written by"):
            raise RuntimeError(f"cannot resume from {path}: {reason}")
        report(f"[distgan] ignoring incomplete checkpoint {path}: {reason}")
    return None


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CheckpointWriter:
    """Writes and prunes checkpoints; every rank calls ``save`` at the same step."""

    def __init__(self, run_dir: Path, info: ProcessInfo, keep_last: int) -> None:
        self.root = checkpoint_dir(run_dir)
        self.info = info
        self.keep_last = keep_last

    def save(self, step: int, engines: Sequence[ModelEngine], trainer_state: dict[str, Any],
             rank_state: dict[str, Any], config_text: str) -> Path:
        final = self.root / f"{_PREFIX}{step:08d}"
        tmp = self.root / f"{_TMP_PREFIX}{step:08d}"
        exists = distributed.broadcast_object(final.exists() and why_incomplete(final) is None)
        if exists:  # resumed at this very step: the state on disk is this state
            return final
        if self.info.is_main:
            self.root.mkdir(parents=True, exist_ok=True)
            if tmp.exists():  # left by a process killed while saving
                shutil.rmtree(tmp)
            (tmp / "ranks").mkdir(parents=True)
        distributed.barrier()
        for engine in engines:
            engine.save(tmp / engine.name, self.info.is_main)
        torch.save(rank_state, tmp / "ranks" / f"rank-{self.info.rank:05d}.pt")
        if self.info.is_main:
            torch.save(trainer_state, tmp / "trainer.pt")
            (tmp / "config.yaml").write_text(config_text)
        distributed.barrier()
        if self.info.is_main:
            meta = {"step": step, "world_size": self.info.world_size,
                    "deepspeed_stage": self.info.deepspeed_stage, "time": time.time()}
            marker = tmp / MARKER
            with open(marker, "w") as f:
                f.write(json.dumps(meta) + "\n")
                f.flush()
                os.fsync(f.fileno())
            _fsync_dir(tmp)
            os.replace(tmp, final)
            _fsync_dir(self.root)
            self.prune()
        distributed.barrier()
        return final

    def prune(self) -> None:
        """Keep the newest ``keep_last`` complete checkpoints; drop stale temporary folders.

        Incomplete ``step-*`` folders older than the newest complete one (a kill while pruning
        leaves one half-deleted) go too; a newer incomplete one is left for a person to look at.
        """
        found = list_checkpoints(self.root.parent)
        complete = [path for path, _ in found if why_incomplete(path) is None]
        newest = next((step for path, step in found if path == complete[0]), None) if complete else None
        stale = [path for path, step in found
                 if newest is not None and step < newest and path not in complete]
        for path in complete[self.keep_last:] + stale:
            shutil.rmtree(path, ignore_errors=True)
        for path in self.root.glob(f"{_TMP_PREFIX}*"):
            shutil.rmtree(path, ignore_errors=True)

