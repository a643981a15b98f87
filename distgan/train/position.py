"""The training batches from a data position on, across epochs, whatever batch size it counts in.

A checkpoint's data position is ``(epoch, batch_in_epoch)`` counted in batches of the
``data.batch_size`` it was trained with (``TrainState.batch_size``). Which clips those batches
held depends on the batch size (each DataLoader worker's range of the epoch is a sum of batch
sizes, ``plan.py``), so a resume with another ``data.batch_size`` cannot skip "the same
batches" at the new size: it would skip more clips than were trained on, or fewer, unsaid.

Instead the rest of the interrupted epoch is read at the checkpoint's batch size, exactly as
the uninterrupted run would have read it (no clip lost, none read twice), and the new batch
size starts with the next epoch. A resume at an epoch's end (or with another world size, which
restarts the epoch) takes the new size at once. With ``train.grad_accum``, a step's micro
batches may straddle the change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Protocol

from distgan.checkpoint.format import Checkpoint
from distgan.config import Config, ConfigError, config_from_yaml_text
from distgan.data.shards import ShardSpec
from distgan.data.stream import TrainLoader
from distgan.data.stream.plan import EpochPlan
from distgan.distributed import ProcessInfo
from distgan.train import corpus


def saved_batch_size(checkpoint: Checkpoint, default: int) -> int:
    """The batch size a checkpoint's data position counts in, for checkpoints whose trainer
    state does not record it (written before it did): its config's, else ``default``."""
    try:
        return config_from_yaml_text(checkpoint.config_text()).data.batch_size
    except (OSError, ConfigError):
        return default


class DataPosition(Protocol):
    epoch: int
    batch_in_epoch: int
    batch_size: int


class TrainData:
    """Batches across epochs from ``state``'s position; the position advances as each batch is
    taken (``state`` is the trainer's, saved with each checkpoint)."""

    def __init__(self, cfg: Config, info: ProcessInfo, spec: ShardSpec, state: DataPosition) -> None:
        self.cfg, self.info, self.spec, self.state = cfg, info, spec, state
        wanted = cfg.data.batch_size
        if not state.batch_size or state.batch_in_epoch == 0:
            state.batch_size = wanted
        self.loader = self._open(state.batch_size, state.epoch, state.batch_in_epoch)
        if state.batch_size != wanted and info.is_main:
            left = self.loader.batches_per_epoch - state.batch_in_epoch
            print(f"[distgan] data.batch_size {state.batch_size} -> {wanted}: the checkpoint is at batch "
                  f"{state.batch_in_epoch} of epoch {state.epoch}; its other {left} batches are read at "
                  f"batch size {state.batch_size}, so that no clip of the epoch is lost or read twice; "
                  f"batch size {wanted} from epoch {state.epoch + 1} on", flush=True)
        # The configured size's epoch length (the learning-rate schedule's epoch); checked now,
        # before anything is written, so that a batch size the corpus cannot fill fails at once.
        plan = self.loader.stream.plan
        self.batches_per_epoch = EpochPlan(plan.counts, world_size=plan.world_size, batch_size=wanted,
                                           seed=plan.seed).batches_per_epoch

    def _open(self, batch_size: int, epoch: int, skip: int) -> TrainLoader:
        cfg = self.cfg if batch_size == self.cfg.data.batch_size else replace(
            self.cfg, data=replace(self.cfg.data, batch_size=batch_size))
        return corpus.train_loader(cfg, self.info, self.spec, epoch, skip)

    def batches(self) -> Iterator[dict]:
        state = self.state
        while True:
            for batch in self.loader.next_epoch():
                state.batch_in_epoch += 1
                if state.batch_in_epoch == self.loader.batches_per_epoch:
                    state.epoch += 1
                    state.batch_in_epoch = 0
                yield batch
            self._switch_batch_size()  # the epoch's iterator has ended: its workers may stop

    def _switch_batch_size(self) -> None:
        """At an epoch's end: the configured batch size from here on, if the epoch had another."""
        if self.state.batch_size == self.cfg.data.batch_size:
            return
        self.loader.close()
        self.state.batch_size = self.cfg.data.batch_size
        self.loader = self._open(self.state.batch_size, self.state.epoch, 0)
        if self.info.is_main:
            print(f"[distgan] epoch {self.state.epoch}: data.batch_size {self.state.batch_size} from here on",
                  flush=True)

    def close(self) -> None:
        self.loader.close()
