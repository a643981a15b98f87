"""The checkpoint folder: its names, what makes it complete, and finding the newest usable one.

Training writes checkpoints (``distgan.train.checkpoint``); training, inference and export read
them through this module, which imports nothing from training. Layout::

    RUN_DIR/checkpoints/step-00001000/
      generator/          engine state: state.pt (DDP, one process) or zero/ (DeepSpeed, per rank);
                          universal/ when DeepSpeed ranks of another world size resumed from it
      discriminator/
      trainer.pt          step, epoch, data position, counters (rank 0)
      ranks/rank-00000.pt RNG states and a weight fingerprint, one file per rank
      ema/generator.pt    train.ema_decay: the average of G's weights (rank 0), or under ZeRO-3
      ema/generator/rank-00000.pt  each rank's partition of it (``distgan.checkpoint.ema``)
      config.yaml         the resolved config of the run
      COMPLETE            JSON: step, world size, ZeRO stage, and every other file's size and
                          XXH3-128 digest; written last, after every file is on the disk

A checkpoint is written into a hidden ``.tmp-step-*`` folder and renamed into place after its
marker, so a folder named ``step-*`` without a marker is one a kill interrupted while pruning.

Two levels of checking: ``checkpoint_problem`` (cheap, used to list and prune) checks the marker
and that every listed file is there with its size, which catches a truncated or missing file;
``content_problem`` reads the files and compares digests, which catches a flipped bit, and maps
each ``.pt`` file through a weights-only unpickler, which refuses a pickled payload. A resume
verifies content before it loads anything (``distgan.train.trainer``), and a checkpoint that
fails either is reported and passed over for the next older one. Checkpoints written before
markers listed their files are checked for the files they must hold, not for their content.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distgan.checkpoint.files import (
    HASH_NAME,
    UnsafeCheckpointFile,
    deepspeed_records,
    digest,
    load_file,
    numpy_array_globals,
)

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
# DeepSpeed's world-size-free ("universal") form of zero/, made from it on the first resume with
# another world size (distgan.train.deepspeed_engine); derived data, outside the marker's list.
UNIVERSAL = "universal"


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


@dataclass
class Checkpoint:
    """A complete checkpoint folder; ``meta`` is its marker's JSON."""

    path: Path
    step: int
    meta: dict[str, Any]

    @property
    def world_size(self) -> int:
        """How many ranks wrote it."""
        return int(self.meta.get("world_size", 1))

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        """Relative path -> ``{"size", "xxh3_128"}`` of every file (empty for old checkpoints)."""
        return self.meta.get("files", {})

    def trainer_state(self) -> dict[str, Any]:
        return load_file(self.path / TRAINER_STATE)

    def rank_state(self, rank: int) -> dict[str, Any] | None:
        path = self.path / rank_file(rank)
        return load_file(path, numpy_array_globals()) if path.is_file() else None

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


def _read_marker(path: Path) -> dict[str, Any] | CheckpointProblem:
    marker = path / MARKER
    if not marker.is_file():
        return IncompleteCheckpoint(path, "no completion marker")
    try:
        meta = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError) as err:
        return IncompleteCheckpoint(path, f"unreadable completion marker ({err})")
    return meta if isinstance(meta, dict) else IncompleteCheckpoint(path, "completion marker is not an object")


def _files_problem(path: Path, meta: dict[str, Any]) -> str | None:
    """A listed file that is missing or has another size; old checkpoints: a missing state file."""
    files = meta.get("files")
    if files is None:  # written before markers listed files
        if not (path / TRAINER_STATE).is_file():
            return f"{TRAINER_STATE} is missing"
        written_by = int(meta.get("world_size", 1))
        return next(filter(None, (engine_problem(path / engine, written_by) for engine in ENGINES)), None)
    for name, entry in sorted(files.items()):
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != entry["size"]:
            return f"{name} has {file.stat().st_size} bytes, the marker says {entry['size']} (truncated or rewritten)"
    return None


def _inspect(path: Path) -> dict[str, Any] | CheckpointProblem:
    """The marker's JSON when the cheap checks pass, else the problem."""
    meta = _read_marker(path)
    if isinstance(meta, CheckpointProblem):
        return meta
    reason = _files_problem(path, meta)
    if reason:
        return IncompleteCheckpoint(path, reason)
    return meta


def checkpoint_problem(path: Path) -> CheckpointProblem | None:
    """What is wrong with loading ``path``, or None. Any number of ranks can resume from it
    (DeepSpeed's partitions are converted when the number differs).

    Cheap: the marker, and every listed file present with its size (not its content).
    """
    found = _inspect(Path(path))
    return found if isinstance(found, CheckpointProblem) else None


def content_problem(checkpoint: Checkpoint, names: list[str] | None = None,
                    unpickle_check: str = "all") -> CheckpointProblem | None:
    """The first of ``names`` (default: every listed file) whose bytes do not match the marker, or
    (``.pt`` files) that would unpickle anything but weights and DeepSpeed's own records.

    ``unpickle_check="deepspeed"`` checks the unpickling of DeepSpeed's files only: for a caller
    that loads the others weights-only itself and can still pass the checkpoint over after that.
    """
    for name in sorted(checkpoint.files) if names is None else names:
        expected, path = checkpoint.files[name], checkpoint.path / name
        try:
            found = digest(path)
        except OSError as err:
            return IncompleteCheckpoint(checkpoint.path, f"{name} cannot be read ({err})")
        if found[HASH_NAME] != expected[HASH_NAME] or found["size"] != expected["size"]:
            return IncompleteCheckpoint(checkpoint.path, f"{name} is corrupt (its {HASH_NAME} digest differs "
                                                         "from the one written with it)")
        zero_file = f"/{ZERO_TAG}/" in name
        if name.endswith(".pt") and (zero_file or unpickle_check == "all"):
            records = deepspeed_records() if zero_file else []
            try:
                load_file(path, [*numpy_array_globals(), *records], mmap=True)
            except (UnsafeCheckpointFile, RuntimeError, OSError) as err:
                return IncompleteCheckpoint(checkpoint.path, str(err))
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


def open_checkpoint(path: Path) -> Checkpoint:
    """The checkpoint at ``path``; raises its ``CheckpointProblem`` when it cannot be loaded."""
    found = _inspect(Path(path))
    if isinstance(found, CheckpointProblem):
        raise found
    return Checkpoint(Path(path), int(found["step"]), found)


def complete_checkpoints(run_dir: Path, report: Callable[[str], Any] = print) -> Iterator[Checkpoint]:
    """Complete checkpoints, newest first (cheap check); incomplete ones are reported and passed
    over."""
    for path, _ in list_checkpoints(run_dir):
        try:
            yield open_checkpoint(path)
        except IncompleteCheckpoint as problem:
            report(f"[distgan] ignoring incomplete checkpoint {path}: {problem.reason}")


def latest_checkpoint(run_dir: Path, report: Callable[[str], Any] = print,
                      verify_content: bool = False) -> Checkpoint | None:
    """The newest complete checkpoint (with ``verify_content``: whose files match their digests)."""
    for checkpoint in complete_checkpoints(run_dir, report):
        problem = content_problem(checkpoint) if verify_content else None
        if problem is None:
            return checkpoint
        report(f"[distgan] ignoring checkpoint {checkpoint.path}: {problem.reason}")
    return None


def resolve_checkpoint(path: str | Path) -> Checkpoint:
    """A run directory (its newest complete checkpoint) or a checkpoint folder, its content verified.

    Raises ``FileNotFoundError`` for anything else and ``CheckpointProblem`` for a checkpoint
    that cannot be loaded.
    """
    path = Path(path)
    if checkpoint_dir(path).is_dir():
        checkpoint = latest_checkpoint(path, verify_content=True)
        if checkpoint is None:
            raise FileNotFoundError(f"{path}: no complete checkpoint in this run directory")
        return checkpoint
    if (path / ENGINES[0]).is_dir() and (path / CONFIG).is_file():
        checkpoint = open_checkpoint(path)
        problem = content_problem(checkpoint)
        if problem is not None:
            raise problem
        return checkpoint
    raise FileNotFoundError(f"{path}: neither a run directory nor a checkpoint folder")
