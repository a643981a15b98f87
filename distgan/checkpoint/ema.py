"""The average of the generator's weights a checkpoint holds (``train.ema_decay``), read back whole.

Training writes it (``distgan.train.ema``) in one of two forms, listed in the marker with the rest:

- ``ema/generator.pt``: ``{"average": {name: fp32 tensor}, "decay": d}``, the whole average, written
  by rank 0 (one process, DDP, ZeRO-1/2: every rank holds all of it);
- ``ema/generator/rank-NNNNN.pt``, one per rank under ZeRO-3: ``{"partition": {name: flat fp32},
  "shapes": {name: shape}, "rank": r, "ranks": n, "decay": d}``. Rank ``r`` holds elements
  ``[r * size, (r + 1) * size)`` of each flattened parameter, ``size = ceil(numel / n)`` (the last
  rank's tail is padding): DeepSpeed's own layout of ``param.ds_tensor``.

Only parameters are averaged: a checkpoint's buffers (BatchNorm's running estimates, spectral
norm's vectors, a codec's codebook statistics) are the live model's, and an averaged model takes
them from there. This module imports nothing of training, so inference and export read it too.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from distgan.checkpoint.files import load_file
from distgan.checkpoint.format import Checkpoint

EMA = "ema"
FULL = f"{EMA}/generator.pt"
FIELD = "train.ema_decay"


def partition_file(rank: int) -> str:
    return f"{EMA}/generator/rank-{rank:05d}.pt"


def partition_size(numel: int, ranks: int) -> int:
    return math.ceil(numel / ranks)


def has_average(checkpoint: Checkpoint) -> bool:
    return (checkpoint.path / FULL).is_file() or (checkpoint.path / partition_file(0)).is_file()


def no_average(checkpoint: Checkpoint) -> ValueError:
    """The refusal of ``--ema`` for a checkpoint without an average, naming it and the setting."""
    return ValueError(f"{checkpoint.path} holds no average of the generator's weights (ema/): the run that wrote "
                      f"it did not set {FIELD}; leave out --ema for its live weights, or train with {FIELD}=0.99")


def read_partition(checkpoint: Checkpoint, rank: int) -> dict:
    return load_file(checkpoint.path / partition_file(rank))


def partition_count(checkpoint: Checkpoint) -> int:
    """How many ranks wrote partitions (0: the average is one whole file)."""
    return len(list((checkpoint.path / EMA / "generator").glob("rank-*.pt")))


def assemble(partitions: list[dict]) -> dict[str, torch.Tensor]:
    """The whole average out of every rank's partition, in rank order."""
    shapes = partitions[0]["shapes"]
    whole = {}
    for name, shape in shapes.items():
        flat = torch.cat([part["partition"][name].reshape(-1) for part in partitions])
        whole[name] = flat[:math.prod(shape)].reshape(shape).clone()
    return whole


def average_state_dict(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    """The whole fp32 average, by parameter name (gathered from ZeRO-3's partition files);
    raises ``no_average``'s error when the checkpoint has none."""
    if (checkpoint.path / FULL).is_file():
        return {name: value.float() for name, value in load_file(checkpoint.path / FULL)["average"].items()}
    ranks = partition_count(checkpoint)
    if not ranks:
        raise no_average(checkpoint)
    parts = [read_partition(checkpoint, rank) for rank in range(ranks)]
    if {part["ranks"] for part in parts} != {ranks}:
        raise ValueError(f"{checkpoint.path / EMA}: {ranks} partition files, but they were written by "
                         f"{sorted({part['ranks'] for part in parts})} ranks")
    return assemble(parts)


def with_average(state: dict[str, torch.Tensor], checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    """``state`` (a generator's full state dict from ``checkpoint``) with every parameter replaced by
    its average; buffers stay as they are."""
    average = average_state_dict(checkpoint)
    missing = sorted(set(average) - set(state))
    if missing:
        raise ValueError(f"{checkpoint.path / EMA}: averages parameters the generator does not have: {missing[:3]}")
    return {**state, **{name: value.to(state[name].dtype) for name, value in average.items()}}


def write_path(folder: Path, rank: int | None) -> Path:
    """Where a checkpoint folder being written takes the average: the whole file (``rank`` None)
    or that rank's partition."""
    return folder / (FULL if rank is None else partition_file(rank))
