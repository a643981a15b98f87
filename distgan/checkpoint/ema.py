"""The average of the generator's weights a checkpoint holds (``train.ema_decay``), read back whole.

Training writes it (``distgan.train.ema``) in one of two forms, listed in the marker with the rest:

- ``ema/generator.pt``: ``{"average": {name: fp32 tensor}}``, the whole average, written by rank 0
  (one process, DDP, ZeRO-1/2: every rank holds all of it);
- ``ema/generator/rank-NNNNN.pt``, one per rank under ZeRO-3: ``{"partition": {name: flat fp32},
  "shapes": {name: shape}, "ranks": n}``. Rank ``r`` holds elements ``[r * size, (r + 1) * size)``
  of each flattened parameter, ``size = ceil(numel / n)``, the last rank's tail being padding:
  DeepSpeed's own layout of ``param.ds_tensor``. Gathering them is concatenating them in rank order
  and cutting the padding off (``assemble``), on the host, with no process group.

Only parameters are averaged: a checkpoint's buffers (BatchNorm's running estimates, spectral
norm's vectors, a codec's codebook statistics) are the live model's, and an averaged model takes
them from there. This module imports nothing of training, so inference and export read it too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from distgan.checkpoint.files import load_file
from distgan.checkpoint.format import Checkpoint

FULL = "ema/generator.pt"
PARTITIONS = "ema/generator"
FIELD = "train.ema_decay"


def partition_file(rank: int) -> str:
    return f"{PARTITIONS}/rank-{rank:05d}.pt"


def partition_count(checkpoint: Checkpoint) -> int:
    """How many ranks wrote partitions of the average (0: it is one whole file, or there is none)."""
    return sum(1 for name in checkpoint.files if name.startswith(f"{PARTITIONS}/"))


def has_average(checkpoint: Checkpoint) -> bool:
    return FULL in checkpoint.files or partition_count(checkpoint) > 0


def no_average(checkpoint: Checkpoint) -> ValueError:
    """The refusal of ``--ema`` for a checkpoint without an average, naming it and the setting."""
    return ValueError(f"{checkpoint.path} holds no average of the generator's weights (no ema/ in it): the run "
                      f"that wrote it did not set {FIELD}; leave out --ema for its weights, or train with "
                      f"{FIELD}=0.99")


def partition(whole: torch.Tensor, rank: int, ranks: int) -> torch.Tensor:
    """Rank ``rank``'s flat share of ``whole`` among ``ranks`` (zero-padded at the end)."""
    size = math.ceil(whole.numel() / ranks)
    flat = F.pad(whole.reshape(-1), (0, size * ranks - whole.numel()))
    return flat[rank * size:(rank + 1) * size].clone()


def assemble(partitions: list[dict]) -> dict[str, torch.Tensor]:
    """The whole average out of every rank's partition file, in rank order."""
    whole = {}
    for name, shape in partitions[0]["shapes"].items():
        flat = torch.cat([part["partition"][name] for part in partitions])
        whole[name] = flat[:math.prod(shape)].reshape(shape).clone()
    return whole


def average_state_dict(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    """The whole fp32 average by parameter name (ZeRO-3's partitions assembled); raises
    ``no_average``'s error when the checkpoint has none."""
    if FULL in checkpoint.files:
        return load_file(checkpoint.path / FULL)["average"]
    ranks = partition_count(checkpoint)
    if not ranks:
        raise no_average(checkpoint)
    parts = [load_file(checkpoint.path / partition_file(rank)) for rank in range(ranks)]
    if any(part["ranks"] != ranks for part in parts):
        raise ValueError(f"{checkpoint.path / PARTITIONS}: {ranks} partition files, written by "
                         f"{sorted({part['ranks'] for part in parts})} ranks")
    return assemble(parts)


def with_average(state: dict[str, torch.Tensor], checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    """``state`` (a generator's full state dict from ``checkpoint``) with every parameter replaced by
    its average, in the state's dtype; the buffers stay as they are."""
    average = average_state_dict(checkpoint)
    unknown = sorted(set(average) - set(state))
    if unknown:
        raise ValueError(f"{checkpoint.path}: its average names parameters the generator does not have: {unknown[:3]}")
    return {**state, **{name: value.to(state[name].dtype) for name, value in average.items()}}
