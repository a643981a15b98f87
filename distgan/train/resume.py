"""What a start may do with the checkpoints it finds: resume one, pass a damaged one over, or refuse.

A run directory that held checkpoints never starts again from step 0 in silence. Each
checkpoint that fails verification or loading is *rejected*: moved aside to
``step-N.rejected`` with a ``REJECTED`` file saying why, and said. When none is left to resume
(this start rejected them all, an earlier one did, or only incomplete folders remain), the start
is refused with ``NoCheckpointToResume`` (``distgan train`` exits ``NO_CHECKPOINT_EXIT_CODE``)
naming each checkpoint and why, unless the user asked for ``--fresh-start``.

"Rejected" is for damaged or unsafe files only. A checkpoint that is intact but was written by
another launch mode (a DeepSpeed ZeRO checkpoint in a plain process, or the other way round) is
neither loaded nor moved: ``WrongLaunchMode`` says which mode wrote it and how to resume it.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distgan.checkpoint.format import Checkpoint, CheckpointProblem, checkpoint_dir

REJECTED_SUFFIX = ".rejected"
REASON_FILE = "REJECTED"
NO_CHECKPOINT_EXIT_CODE = 7
FRESH_START_OPTION = "--fresh-start"


class NoCheckpointToResume(CheckpointProblem):
    """The run directory held checkpoints and none of them can be resumed; nothing was trained."""

    label = "no checkpoint to resume"


class WrongLaunchMode(CheckpointProblem):
    """An intact checkpoint written by another launch mode; it stays where it is."""

    label = "written by another launch mode"


def reject(path: Path, reason: str, report: Callable[[str], Any]) -> Path:
    """Move a checkpoint that failed verification aside (``step-N.rejected``, its reason in
    ``REJECTED``), for a person to look at: never loaded or pruned, and a new checkpoint of that
    step can take its name."""
    target = path.with_name(path.name + REJECTED_SUFFIX)
    shutil.rmtree(target, ignore_errors=True)
    path.rename(target)
    with contextlib.suppress(OSError):  # the move is what matters; the reason is also in the output
        (target / REASON_FILE).write_text(reason + "\n")
    report(f"[distgan] moved the rejected checkpoint to {target}")
    return target


def earlier_rejections(run_dir: Path, now: list[str]) -> list[str]:
    """``"NAME (REASON)"`` of each checkpoint an earlier start moved aside (``now``: the
    descriptions of this start's verdicts, whose folders are not listed again)."""
    found = []
    root = checkpoint_dir(run_dir)
    for path in sorted(root.glob(f"step-*{REJECTED_SUFFIX}")) if root.is_dir() else []:
        if any(line.startswith(path.name.removesuffix(REJECTED_SUFFIX) + " ") for line in now):
            continue
        reason_file = path / REASON_FILE
        reason = reason_file.read_text().strip() if reason_file.is_file() else "reason not recorded"
        found.append(f"{path.name} (rejected by an earlier start: {reason})")
    return found


def describe_mode(stage: int | None, world_size: int) -> str:
    processes = f"{world_size} process{'es' if world_size != 1 else ''}"
    if stage is not None:
        return f"DeepSpeed ZeRO-{stage} on {processes}"
    return "DDP on " + processes if world_size > 1 else "a single process (no DeepSpeed)"


def _how_to_resume(stage: int | None, run_dir: Path) -> str:
    if stage is not None:
        return (f"resume it under DeepSpeed ZeRO-{stage}, with any number of processes: accelerate launch "
                f"--config_file launch/cpu_zero{stage}.yaml -m distgan train --run-dir {run_dir} (on GPUs, "
                "launch/deepspeed_zero2.yaml or your own DeepSpeed config of that stage)")
    return (f"resume it without DeepSpeed: distgan train --run-dir {run_dir} (one process), or torchrun / "
            "accelerate launch --config_file launch/cpu_ddp.yaml -m distgan train ... (DDP)")


def launch_mode_problem(checkpoint: Checkpoint, stage: int | None, world_size: int,
                        run_dir: Path) -> WrongLaunchMode | None:
    """Why this launch cannot load ``checkpoint`` although it is intact, or None.

    DeepSpeed's partitioned files and the one-file DDP state are different formats; ZeRO-1 and
    ZeRO-2 share theirs (and DeepSpeed converts between world sizes), ZeRO-3 has its own.
    """
    saved = checkpoint.meta.get("deepspeed_stage")
    saved = None if saved is None else int(saved)
    if (saved is None) == (stage is None) and (saved == 3) == (stage == 3):
        return None
    return WrongLaunchMode(checkpoint.path, (
        f"it was written by {describe_mode(saved, checkpoint.world_size)}, and this start is "
        f"{describe_mode(stage, world_size)}, which cannot load it; the checkpoint is intact and stays in "
        f"place: {_how_to_resume(saved, run_dir)}"))


def refusal(run_dir: Path, passed_over: list[str], partly_loaded: bool, fresh_start: bool) -> NoCheckpointToResume:
    """The error of a start that found checkpoints and can resume none of them."""
    listed = listing(run_dir, passed_over)
    if partly_loaded and fresh_start:
        advice = (f"the models hold part of a failed load, so this start cannot begin afresh: run the same "
                  f"command again ({FRESH_START_OPTION}) to start from step 0")
    else:
        advice = (f"nothing was trained; to start again from step 0 in this run directory, add "
                  f"{FRESH_START_OPTION} (the rejected checkpoints stay, for a person to look at), or use a "
                  "new --run-dir")
    return NoCheckpointToResume(run_dir, f"none of its checkpoints can be resumed: {listed}; {advice}")


def listing(run_dir: Path, passed_over: list[str]) -> str:
    """This start's verdicts and the earlier starts' rejections, as one line."""
    return "; ".join(passed_over + earlier_rejections(run_dir, passed_over))


def had_checkpoints(run_dir: Path) -> bool:
    """Whether the run directory holds any checkpoint folder, rejected ones included."""
    root = checkpoint_dir(run_dir)
    return root.is_dir() and any(path.name.startswith("step-") for path in root.iterdir())
