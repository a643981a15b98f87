"""Checkpoints are atomic and self-checking: only complete ones load, pruning follows completion."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from distgan.checkpoint.format import (
    IncompleteCheckpoint,
    checkpoint_problem,
    latest_checkpoint,
    list_checkpoints,
)
from distgan.config import OptimizerConfig
from distgan.distributed import ProcessInfo
from distgan.train.checkpoint import CheckpointWriter
from distgan.train.ddp_engine import DDPEngine
from distgan.train.engine import ModelEngine

INFO = ProcessInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"), is_main=True,
                   deepspeed_stage=None)


def engines() -> list[ModelEngine]:
    out = []
    for name in ("generator", "discriminator"):
        model = torch.nn.Linear(3, 2)
        out.append(DDPEngine(name, model, model, OptimizerConfig(), "fp32", torch.device("cpu"), grad_accum=1))
    return out


def save(writer: CheckpointWriter, step: int, models: list[ModelEngine]) -> Path:
    return writer.save(step, models, {"state": {"step": step}, "world_size": 1}, {"rng": None}, "config: {}\n")


def test_save_then_find_and_reload(tmp_path: Path) -> None:
    models = engines()
    writer = CheckpointWriter(tmp_path, INFO, keep_last=3)
    path = save(writer, 5, models)
    assert path.name == "step-00000005"
    assert json.loads((path / "COMPLETE").read_text())["step"] == 5
    assert {p.name for p in path.iterdir()} == {"generator", "discriminator", "ranks", "trainer.pt",
                                                 "config.yaml", "COMPLETE"}
    found = latest_checkpoint(tmp_path)
    assert found is not None and found.step == 5 and found.trainer_state()["state"]["step"] == 5
    fresh = engines()
    fresh[0].load(found.path / "generator", found.world_size)
    assert torch.equal(fresh[0].model.weight, models[0].model.weight)


def test_incomplete_checkpoints_are_reported_and_never_loaded(tmp_path: Path) -> None:
    writer = CheckpointWriter(tmp_path, INFO, keep_last=5)
    models = engines()
    save(writer, 1, models)
    newest = save(writer, 3, models)
    no_marker = save(writer, 4, models)
    missing_engine = save(writer, 5, models)
    (no_marker / "COMPLETE").unlink()
    shutil.rmtree(missing_engine / "discriminator")
    reports: list[str] = []
    found = latest_checkpoint(tmp_path, report=reports.append)
    assert found is not None and found.path == newest
    assert any("step-00000005" in r and "discriminator/state.pt is missing" in r for r in reports)
    assert any("step-00000004" in r and "no completion marker" in r for r in reports)
    assert checkpoint_problem(newest) is None


def test_leftover_temporary_folder_is_invisible_and_cleaned(tmp_path: Path) -> None:
    writer = CheckpointWriter(tmp_path, INFO, keep_last=2)
    models = engines()
    save(writer, 1, models)
    leftover = tmp_path / "checkpoints" / ".tmp-step-00000002"  # a save killed half-way
    (leftover / "generator").mkdir(parents=True)
    assert latest_checkpoint(tmp_path).step == 1
    save(writer, 2, models)
    assert not leftover.exists() or checkpoint_problem(leftover) is not None
    assert [step for _, step in list_checkpoints(tmp_path)] == [2, 1]
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_pruning_keeps_the_newest_complete_ones(tmp_path: Path) -> None:
    writer = CheckpointWriter(tmp_path, INFO, keep_last=2)
    models = engines()
    for step in (1, 2, 3, 4):
        save(writer, step, models)
    assert [step for _, step in list_checkpoints(tmp_path)] == [4, 3]


def test_saving_the_same_step_again_keeps_the_complete_one(tmp_path: Path) -> None:
    writer = CheckpointWriter(tmp_path, INFO, keep_last=2)
    models = engines()
    first = save(writer, 7, models)
    stamp = (first / "COMPLETE").read_text()
    assert save(writer, 7, models) == first
    assert (first / "COMPLETE").read_text() == stamp


def test_deepspeed_checkpoint_from_another_world_size_is_listed_and_a_missing_shard_is_not(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "step-00000010"
    for engine in ("generator", "discriminator"):
        zero = path / engine / "zero"
        zero.mkdir(parents=True)
        for rank in range(2):
            (zero / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt").write_bytes(b"")
    (path / "trainer.pt").write_bytes(b"")
    (path / "COMPLETE").write_text(json.dumps({"step": 10, "world_size": 2, "deepspeed_stage": 2}))
    assert checkpoint_problem(path) is None
    # Any number of ranks resumes from it (converted on the way: tests/train/test_deepspeed.py).
    found = latest_checkpoint(tmp_path)
    assert found is not None and found.world_size == 2
    # A missing rank shard makes it incomplete: passed over, not an error.
    (path / "generator" / "zero" / "zero_pp_rank_1_mp_rank_00_optim_states.pt").unlink()
    problem = checkpoint_problem(path)
    assert isinstance(problem, IncompleteCheckpoint) and "lacks the optimizer shard of rank 1" in str(problem)
    assert latest_checkpoint(tmp_path, report=lambda _: None) is None


def test_pruning_removes_incomplete_folders_older_than_the_newest_complete(tmp_path: Path) -> None:
    writer = CheckpointWriter(tmp_path, INFO, keep_last=5)
    models = engines()
    half_deleted = save(writer, 1, models)  # as a kill while pruning it would leave it
    shutil.rmtree(half_deleted / "generator")
    save(writer, 2, models)
    assert [step for _, step in list_checkpoints(tmp_path)] == [2]
