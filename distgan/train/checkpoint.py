"""Writing checkpoints atomically, and the RNG state each rank saves with them.

Every rank writes into a hidden temporary folder (each engine into its own subfolder: two
DeepSpeed engines in one folder collide on ``latest`` and the tag); after a barrier, rank 0
writes the ``COMPLETE`` marker last and renames the folder into place. A crash or SIGKILL at any
moment leaves either the previous checkpoints untouched plus a hidden folder that is never
loaded, or a complete new one. Older checkpoints are pruned only after a newer one is complete.
The layout and what makes a checkpoint complete are ``distgan.checkpoint.format``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distgan import distributed
from distgan.checkpoint.format import (
    CONFIG,
    MARKER,
    TMP_PREFIX,
    TRAINER_STATE,
    checkpoint_dir,
    checkpoint_problem,
    list_checkpoints,
    rank_file,
    step_folder_name,
    tmp_folder_name,
)
from distgan.distributed import ProcessInfo
from distgan.train.engine import ModelEngine


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
        final = self.root / step_folder_name(step)
        tmp = self.root / tmp_folder_name(step)
        exists = distributed.broadcast_object(final.exists() and checkpoint_problem(final) is None)
        if exists:  # resumed at this very step: the state on disk is this state
            return final
        if self.info.is_main:
            self.root.mkdir(parents=True, exist_ok=True)
            if tmp.exists():  # left by a process killed while saving
                shutil.rmtree(tmp)
            (tmp / rank_file(0)).parent.mkdir(parents=True)
        distributed.barrier()
        for engine in engines:
            engine.save(tmp / engine.name, self.info.is_main)
        torch.save(rank_state, tmp / rank_file(self.info.rank))
        if self.info.is_main:
            torch.save(trainer_state, tmp / TRAINER_STATE)
            (tmp / CONFIG).write_text(config_text)
        distributed.barrier()
        if self.info.is_main:
            self._complete(tmp, final, step)
        distributed.barrier()
        return final

    def _complete(self, tmp: Path, final: Path, step: int) -> None:
        meta = {"step": step, "world_size": self.info.world_size,
                "deepspeed_stage": self.info.deepspeed_stage, "time": time.time()}
        with open(tmp / MARKER, "w") as f:
            f.write(json.dumps(meta) + "\n")
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        os.replace(tmp, final)
        _fsync_dir(self.root)
        self.prune()

    def prune(self) -> None:
        """Keep the newest ``keep_last`` complete checkpoints; drop stale temporary folders.

        Incomplete ``step-*`` folders older than the newest complete one (a kill while pruning
        leaves one half-deleted) go too; a newer incomplete one is left for a person to look at.
        """
        found = list_checkpoints(self.root.parent)
        complete = [path for path, _ in found if checkpoint_problem(path) is None]
        newest = next((step for path, step in found if path == complete[0]), None) if complete else None
        stale = [path for path, step in found
                 if newest is not None and step < newest and path not in complete]
        for path in complete[self.keep_last:] + stale:
            shutil.rmtree(path, ignore_errors=True)
        for path in self.root.glob(f"{TMP_PREFIX}*"):
            shutil.rmtree(path, ignore_errors=True)
