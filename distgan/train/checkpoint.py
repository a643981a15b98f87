"""Writing checkpoints atomically and verifiably, and the RNG state each rank saves with them.

Every rank writes into a hidden temporary folder (each engine into its own subfolder: two
DeepSpeed engines in one folder collide on ``latest`` and the tag). Then every file is read
back, fingerprinted (XXH3-128) and fsynced, the ranks sharing the files between them; rank 0
writes the ``COMPLETE`` marker listing every file's size and digest, fsyncs it and renames the
folder into place. A crash or SIGKILL at any moment leaves either the previous checkpoints
untouched plus a hidden folder that is never loaded, or a complete new one; a write that fails
(a full disk) removes the temporary folder on every rank and raises ``CheckpointWriteError``
naming the last good checkpoint. Older checkpoints are pruned only after a newer one is complete.
The layout and what makes a checkpoint complete are ``distgan.checkpoint.format``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xxhash

from distgan import distributed
from distgan.checkpoint.files import HASH_NAME, digest, fsync_dir, no_room_reason, save_file
from distgan.checkpoint.format import (
    CONFIG,
    MARKER,
    TMP_PREFIX,
    TRAINER_STATE,
    Checkpoint,
    IncompleteCheckpoint,
    checkpoint_dir,
    checkpoint_problem,
    list_checkpoints,
    rank_file,
    step_folder_name,
    tmp_folder_name,
)
from distgan.distributed import ProcessInfo
from distgan.train.ema import ModelEMA
from distgan.train.engine import ModelEngine
from distgan.train.resume import reject


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (e.g. the disk is full); the message says where, why,
    and which checkpoint is the last good one."""


def weight_fingerprint(engines: Sequence[ModelEngine]) -> tuple[dict[str, str], list[str]]:
    """XXH3-128 of each model's full weights as this rank sees them (ZeRO-3: gathered), and the
    models whose weights are not all finite."""
    digests, non_finite = {}, []
    for engine in engines:
        hasher = xxhash.xxh3_128()
        with engine.full_parameters() as model:
            for name, tensor in sorted(model.state_dict().items()):
                values = tensor.detach().float().cpu().contiguous()
                if not bool(torch.isfinite(values).all()):
                    non_finite.append(f"{engine.name}.{name}")
                hasher.update(name.encode())
                hasher.update(values.numpy().tobytes())
        digests[engine.name] = hasher.hexdigest()
    return digests, non_finite


def check_weights(engines: Sequence[ModelEngine], checkpoint: Checkpoint) -> None:
    """The loaded weights are finite and are the ones the checkpoint's fingerprint describes."""
    digests, non_finite = weight_fingerprint(engines)
    if non_finite:
        raise IncompleteCheckpoint(checkpoint.path, f"non-finite weights in {', '.join(non_finite[:3])}")
    saved = checkpoint.rank_state(0) or {}
    if saved.get("weights_hash") == HASH_NAME and saved["weights"] != digests:
        raise IncompleteCheckpoint(checkpoint.path, "the loaded weights differ from the fingerprint saved "
                                   "with them")


def rng_state() -> dict[str, Any]:
    """This process's random generators, as tensors and numbers (loadable with weights_only)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": position,
                       "has_gauss": has_gauss, "gauss": gauss}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    numpy = state["numpy"]
    if isinstance(numpy, dict):
        numpy = (numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["position"], numpy["has_gauss"],
                 numpy["gauss"])
    np.random.set_state(numpy)  # a tuple with an array in checkpoints of distgan 0.1
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CheckpointWriter:
    """Writes and prunes checkpoints; every rank calls ``save`` at the same step.

    ``last_good`` is the newest checkpoint known good: the one the run resumed from (verified
    before it was loaded), then each one this writer completes.
    """

    def __init__(self, run_dir: Path, info: ProcessInfo, keep_last: int, last_good: Path | None = None) -> None:
        self.root = checkpoint_dir(run_dir)
        self.info = info
        self.keep_last = keep_last
        self.last_good = last_good

    def save(self, step: int, engines: Sequence[ModelEngine], trainer_state: dict[str, Any],
             rank_state: dict[str, Any], config_text: str, ema: ModelEMA | None = None) -> Path:
        """Every rank: write step ``step``'s checkpoint (``ema``: with the average of G's weights)."""
        final, tmp = self.root / step_folder_name(step), self.root / tmp_folder_name(step)
        if self.last_good == final:  # resumed at this very step: the state on disk is this state
            return final
        if self.info.is_main:
            if final.exists():  # a checkpoint this run passed over, or left by another job
                reject(final, "a checkpoint of this step was written again by a later start", print)
            self.root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)  # left by a process killed while saving
            (tmp / rank_file(0)).parent.mkdir(parents=True)
        distributed.barrier()
        error = self._attempt(lambda: self._write_local(tmp, engines, trainer_state, rank_state, config_text, ema))
        self._agree(error, final, tmp)
        entries: dict[str, dict] = {}
        error = self._attempt(lambda: entries.update(self._digest_share(tmp)))
        files = {name: entry for part in distributed.all_gather_object(entries) for name, entry in part.items()}
        self._agree(error, final, tmp)
        outcome = self._attempt(lambda: self._complete(tmp, final, step, files)) if self.info.is_main else None
        self._agree(distributed.broadcast_object(outcome), final, tmp)
        self.last_good = final
        if self.info.is_main:
            self.prune()
        return final

    def _write_local(self, tmp: Path, engines: Sequence[ModelEngine], trainer_state: dict[str, Any],
                     rank_state: dict[str, Any], config_text: str, ema: ModelEMA | None) -> None:
        for engine in engines:
            engine.save(tmp / engine.name, self.info.is_main)
        if ema is not None:
            ema.save(tmp, self.info.rank)
        save_file(rank_state, tmp / rank_file(self.info.rank))
        if self.info.is_main:
            save_file(trainer_state, tmp / TRAINER_STATE)
            (tmp / CONFIG).write_text(config_text)

    def _digest_share(self, tmp: Path) -> dict[str, dict]:
        """Digest and fsync this rank's share of the files (every rank lists the same files)."""
        names = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        share = names[self.info.rank::self.info.world_size]
        return {name: digest(tmp / name, fsync=True) for name in share}

    def _attempt(self, action: Callable[[], Any]) -> str | None:
        """Run a write; a failure becomes its description (every rank must reach the agreement)."""
        try:
            action()
        except (OSError, RuntimeError) as err:
            return no_room_reason(err, self.root) or f"{type(err).__name__}: {err}"
        return None

    def _agree(self, error: str | None, final: Path, tmp: Path) -> None:
        """All ranks stop together if any rank's write failed, leaving no temporary folder."""
        where = distributed.problems_anywhere(error)
        if where is None:
            return
        if self.info.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        good = f"the last good checkpoint is {self.last_good}" if self.last_good else "there is no earlier checkpoint"
        raise CheckpointWriteError(f"could not write checkpoint {final.name} in {self.root} ({where}); "
                                   f"removed the partial {tmp.name}; {good}")

    def _complete(self, tmp: Path, final: Path, step: int, files: dict[str, dict]) -> None:
        meta = {"step": step, "world_size": self.info.world_size, "deepspeed_stage": self.info.deepspeed_stage,
                "time": time.time(), "files": files}
        for folder in sorted({(tmp / name).parent for name in files}, reverse=True):
            fsync_dir(folder)
        with open(tmp / MARKER, "w") as f:
            f.write(json.dumps(meta) + "\n")
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(tmp)
        tmp.rename(final)
        fsync_dir(self.root)

    def prune(self) -> None:
        """Keep the newest ``keep_last`` complete checkpoints; drop stale temporary folders.

        Incomplete ``step-*`` folders older than the newest complete one (a kill while pruning
        leaves one half-deleted) go too; a newer incomplete one is left for a person to look at.
        ``last_good`` is never removed.
        """
        found = list_checkpoints(self.root.parent)
        complete = [path for path, _ in found if checkpoint_problem(path) is None]
        newest = next((step for path, step in found if path == complete[0]), None) if complete else None
        stale = [path for path, step in found
                 if newest is not None and step < newest and path not in complete]
        for path in complete[self.keep_last:] + stale:
            if path != self.last_good:
                shutil.rmtree(path, ignore_errors=True)
        for path in self.root.glob(f"{TMP_PREFIX}*"):
            shutil.rmtree(path, ignore_errors=True)
