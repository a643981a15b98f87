"""A resume with another ``data.batch_size`` loses no clip and reads none twice: the rest of the
interrupted epoch comes at the checkpoint's batch size, exactly as the uninterrupted run reads it,
and the next epoch at the new size, exactly as a run at that size reads it (``train/position.py``).

In-process, on the synthetic corpus (44 training clips): batches are compared bit for bit.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from itertools import islice

import pytest
import torch

from distgan.config import load_config
from distgan.distributed import ProcessInfo
from distgan.train.corpus import corpus_spec
from distgan.train.position import TrainData
from tests.train.helpers import FAST, TINY

INFO = ProcessInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"), is_main=True)


@dataclass
class Position:
    epoch: int = 0
    batch_in_epoch: int = 0
    batch_size: int = 0


def audio(batch_size: int, position: Position, count: int, **overrides: str) -> tuple[list[torch.Tensor], TrainData]:
    cfg = load_config(TINY, [*FAST, f"data.batch_size={batch_size}", *(f"{k}={v}" for k, v in overrides.items())])
    data = TrainData(cfg, INFO, corpus_spec(cfg), position)
    try:
        return [batch["audio"] for batch in islice(data.batches(), count)], data
    finally:
        data.close()


@functools.cache
def straight_at_2() -> list[torch.Tensor]:
    """Epoch 0 of an uninterrupted run at batch 2 (22 batches)."""
    return audio(2, Position(), 22)[0]


@pytest.mark.parametrize("new_size", [8, 3, 1])
def test_the_interrupted_epoch_ends_at_the_checkpoints_batch_size(new_size: int) -> None:
    straight = straight_at_2()
    position = Position(epoch=0, batch_in_epoch=5, batch_size=2)
    resumed, data = audio(new_size, position, 17 + 2)
    assert all(torch.equal(a, b) for a, b in zip(resumed[:17], straight[5:], strict=True))
    next_epoch, _ = audio(new_size, Position(epoch=1), 2)
    assert all(torch.equal(a, b) for a, b in zip(resumed[17:], next_epoch, strict=True))
    assert (position.epoch, position.batch_in_epoch, position.batch_size) == (1, 2, new_size)
    assert data.batches_per_epoch == -(-44 // new_size)  # the schedule's epoch: the new size's


def test_a_checkpoint_at_an_epochs_end_takes_the_new_size_at_once() -> None:
    position = Position(epoch=1, batch_in_epoch=0, batch_size=2)
    resumed, _ = audio(8, position, 2)
    fresh, _ = audio(8, Position(epoch=1), 2)
    assert [b.shape[0] for b in resumed] == [8, 8] and all(map(torch.equal, resumed, fresh))
