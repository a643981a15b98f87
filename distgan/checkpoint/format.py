"""The checkpoint folder: its names, what makes it complete, and finding the newest usable one.

Training writes checkpoints (``distgan.train.checkpoint``); training, inference and export read
them through this module, which imports nothing from training. Layout::

    RUN_DIR/checkpoints/step-00001000/
      generator/          engine state: state.pt (DDP, one process) or zero/ (DeepSpeed, per rank)
      discriminator/
      trainer.pt          step, epoch, data position, counters (rank 0)
      ranks/rank-00000.pt RNG states and a weight fingerprint, one file per rank
      config.yaml         the resolved config of the run
      COMPLETE            JSON: step, world size, ZeRO stage; written last

A checkpoint is written into a hidden ``.tmp-step-*`` folder and renamed into place after its
marker, so a folder named ``step-*`` without a marker is one a kill interrupted while pruning.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

CHECKPOINTS = "checkpoints"
STEP_PREFIX = "step-"
TMP_PREFIX = ".tmp-step-"
MARKER = "COMPLETE"
TRAINER_STATE = "trainer.pt"
RANKS = "ranks"
CONFIG = "config.yaml"
ENGINES = ("generator", "discriminator")
# Inside an engine folder: one file for DDP, or DeepSpeed's own checkpoint under this tag.
DDP_STATE = "state.pt"
ZERO_TAG = "zero"


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINTS


def step_folder_name(step: int) -> str:
    return f"{STEP_PREFIX}{step:08d}"


def tmp_folder_name(step: int) -> str:
    return f"{TMP_PREFIX}{step:08d}"


def rank_file(rank: int) -> str:
    return f"{RANKS}/rank-{rank:05d}.pt"


class CheckpointProblem(ValueError):
    """Why a checkpoint folder cannot be loaded: ``str()`` names the folder and the reason."""

    label = "cannot load checkpoint"

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {self.label} ({reason})")
        self.path = path
        self.reason = reason


class IncompleteCheckpoint(CheckpointProblem):
    """Never to be loaded (interrupted write, missing file); an older checkpoint may be used."""

    label = "incomplete checkpoint"


class WorldSizeMismatch(CheckpointProblem):
    """Complete, but its ZeRO partitions belong to another number of ranks. Falling back to an
    older checkpoint would silently throw away the work since, so this stops a resume."""

    label = "cannot resume from this checkpoint"


@dataclass
class Checkpoint:
    """A complete checkpoint folder; ``meta`` is its marker's JSON."""

    path: Path
    step: int
    meta: dict[str, Any]

    def trainer_state(self) -> dict[str, Any]:
        return torch.load(self.path / TRAINER_STATE, map_location="cpu", weights_only=False)

    def rank_state(self, rank: int) -> dict[str, Any] | None:
        path = self.path / rank_file(rank)
        return torch.load(path, map_location="cpu", weights_only=False) if path.is_file() else None

    def config_text(self) -> str:
        return (self.path / CONFIG).read_text()


def engine_problem(folder: Path, world_size: int) -> str | None:
    """Why an engine folder is unusable for ``world_size`` writing ranks, or None when complete."""
    if (folder / DDP_STATE).is_file():
        return None
    zero = folder / ZERO_TAG
    if not zero.is_dir():
        return f"{folder} holds no model state"
    for rank in range(world_size):
        if not list(zero.glob(f"*zero_pp_rank_{rank}_*optim_states.pt")):
            return f"{zero} lacks the optimizer shard of rank {rank}"
    return None


def checkpoint_problem(path: Path, world_size: int | None = None) -> CheckpointProblem | None:
    """What is wrong with loading ``path`` (with ``world_size`` ranks, when given), or None."""
    path = Path(path)
    marker = path / MARKER
    if not marker.is_file():
        return IncompleteCheckpoint(path, "no completion marker")
    try:
        meta = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError) as err:
        return IncompleteCheckpoint(path, f"unreadable completion marker ({err})")
    if not (path / TRAINER_STATE).is_file():
        return IncompleteCheckpoint(path, f"{TRAINER_STATE} is missing")
    written_by = int(meta.get("world_size", 1))
    for engine in ENGINES:
        reason = engine_problem(path / engine, written_by)
        if reason:
            return IncompleteCheckpoint(path, reason)
    if world_size is not None and meta.get("deepspeed_stage") is not None and written_by != world_size:
        return WorldSizeMismatch(
            path, f"written by {written_by} DeepSpeed ranks, this run has {world_size}: ZeRO partitions "
            f"do not match; convert it with DeepSpeed's ds_to_universal.py or resume with {written_by} ranks")
    return None


def list_checkpoints(run_dir: Path) -> list[tuple[Path, int]]:
    """All ``step-*`` folders, newest first (complete or not)."""
    root = checkpoint_dir(run_dir)
    found = []
    if root.is_dir():
        for path in root.iterdir():
            digits = path.name[len(STEP_PREFIX):]
            if path.is_dir() and path.name.startswith(STEP_PREFIX) and digits.isdigit():
                found.append((path, int(digits)))
    return sorted(found, key=lambda item: item[1], reverse=True)


def open_checkpoint(path: Path, world_size: int | None = None) -> Checkpoint:
    """The checkpoint at ``path``; raises its ``CheckpointProblem`` when it cannot be loaded."""
    problem = checkpoint_problem(path, world_size)
    if problem is not None:
        raise problem
    meta = json.loads((Path(path) / MARKER).read_text())
    return Checkpoint(Path(path), int(meta["step"]), meta)


def latest_checkpoint(run_dir: Path, world_size: int | None = None,
                      report: Callable[[str], Any] = print) -> Checkpoint | None:
    """The newest complete checkpoint; incomplete ones are reported and passed over.

    Raises ``WorldSizeMismatch`` rather than passing over a complete checkpoint.
    """
    for path, _ in list_checkpoints(run_dir):
        try:
            return open_checkpoint(path, world_size)
        except IncompleteCheckpoint as problem:
            report(f"[distgan] ignoring incomplete checkpoint {path}: {problem.reason}")
    return None


def resolve_checkpoint(path: str | Path) -> Checkpoint:
    """A run directory (its newest complete checkpoint) or a checkpoint folder, checked.

    Raises ``FileNotFoundError`` for anything else and ``CheckpointProblem`` for a checkpoint
    that cannot be loaded.
    """
    path = Path(path)
    if checkpoint_dir(path).is_dir():
        checkpoint = latest_checkpoint(path)
        if checkpoint is None:
            raise FileNotFoundError(f"{path}: no complete checkpoint in this run directory")
        return checkpoint
    if (path / ENGINES[0]).is_dir() and (path / CONFIG).is_file():
        return open_checkpoint(path)
    raise FileNotFoundError(f"{path}: neither a run directory nor a checkpoint folder")
