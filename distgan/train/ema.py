"""An exponential moving average of the generator's weights (``train.ema_decay``), as audiocraft
keeps one (decay 0.99, every step): after each generator update that was not skipped,
``average += (1 - decay) * (weights - average)``.

- **What is averaged.** The parameters, in fp32 whatever the training precision (one
  ``torch._foreach_lerp_`` over all of them, no Python loop over tensors). Buffers are not: an
  averaged model takes the live model's (BatchNorm's running estimates, spectral norm's vectors,
  a codec's codebook statistics are estimates of their own, not weights a gradient moved).
- **Where.** Each rank averages what its engine holds (``ModelEngine.local_parameters``): under
  ZeRO-3 its own partition of each parameter (``param.ds_tensor``; no gather, ever, in the update),
  so the average costs ``4 / ranks`` bytes per parameter on each rank; under one process, DDP and
  ZeRO-1/2 every rank holds the whole parameters anyway and keeps the whole average (4 bytes per
  parameter): then each rank validates with its own copy (no collective) and rank 0 writes one
  file, where a partition would save ``(ranks - 1) / ranks`` of a copy of G (the size of one of
  Adam's two moments under DDP) at the price of a gather for each validation and checkpoint.
- **Skipped updates.** ``skipped`` is the step's own flag (``skips.py``): a host ``True`` leaves
  the average alone; a device flag (a fused optimizer's on-device skip) sets the interpolation
  weight to 0 on the device, so the update costs no host read. Every rank reaches the same
  verdict, so the ranks' averages stay one average.
- **Schedule.** ``train.ema_every``: every n-th step (counted in training steps) that updates G;
  before ``train.ema_start_step`` the average is a copy of the weights.
- **Validation** runs on the average (``applied``: the average is written into the live
  parameters for the validation and the weights put back bit for bit after it).
- **Checkpoint.** ``save`` writes the whole average (rank 0) or each rank's partition; ``restore``
  reads it back exactly, and a checkpoint without one starts the average from the weights.
  The format and the reading for inference are ``distgan.checkpoint.ema``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from distgan.checkpoint.ema import (
    FIELD,
    assemble,
    has_average,
    partition_count,
    partition_size,
    read_partition,
    write_path,
)
from distgan.checkpoint.files import load_file, save_file
from distgan.checkpoint.format import Checkpoint
from distgan.config import TrainConfig
from distgan.train.engine import ModelEngine


class ModelEMA:
    """The average of ``engine``'s parameters (this rank's share of them), fp32."""

    def __init__(self, engine: ModelEngine, decay: float, every: int = 1, start_step: int = 0) -> None:
        self.engine, self.decay, self.every, self.start_step = engine, decay, every, start_step
        with torch.no_grad():
            self.average = {name: t.float().clone() for name, t in engine.local_parameters().items()}

    @classmethod
    def configured(cls, train: TrainConfig, engine: ModelEngine) -> ModelEMA | None:
        """The average ``train.ema_*`` asks for, or None when ``train.ema_decay`` is null."""
        if train.ema_decay is None:
            return None
        return cls(engine, train.ema_decay, train.ema_every, train.ema_start_step)

    def nbytes(self) -> int:
        """Bytes of the average on this rank."""
        return sum(t.numel() * t.element_size() for t in self.average.values())

    @torch.no_grad()
    def update(self, step: int, skipped: torch.Tensor | bool) -> None:
        """After step ``step``'s generator update (``skipped``: whether it was dropped)."""
        if (isinstance(skipped, bool) and skipped) or step % self.every:
            return
        weight = 1.0 if step < self.start_step else 1.0 - self.decay
        live = [t if t.dtype == torch.float32 else t.float() for t in self.engine.local_parameters().values()]
        averages = list(self.average.values())
        if torch.is_tensor(skipped):  # no host read: weight 0 on the device when the update was dropped
            weight = torch.where(skipped, 0.0, weight).to(averages[0].device, torch.float32)
        if not torch.is_tensor(weight) and weight == 1.0:
            torch._foreach_copy_(averages, live)
        else:
            torch._foreach_lerp_(averages, live, weight)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The engine runs with the averaged parameters inside; its own come back bit for bit after."""
        live = self.engine.local_parameters()
        with torch.no_grad():
            saved = [t.clone() for t in live.values()]
            torch._foreach_copy_(list(live.values()), list(self.average.values()))
        self.engine.local_parameters_changed()
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(list(self.engine.local_parameters().values()), saved)
            self.engine.local_parameters_changed()

    # --- the checkpoint ---------------------------------------------------------------------------
    def save(self, folder: Path, rank: int) -> None:
        """Write the average into the checkpoint folder being written (every rank calls this)."""
        part = self.engine.partition()
        if part is None:
            if rank == 0:
                path = write_path(folder, None)
                path.parent.mkdir(parents=True, exist_ok=True)
                save_file({"average": {k: v.cpu() for k, v in self.average.items()}, "decay": self.decay}, path)
            return
        shapes = {name: list(p.ds_shape) for name, p in self.engine.model.named_parameters()}
        path = write_path(folder, part[0])
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({"partition": {k: v.cpu() for k, v in self.average.items()}, "shapes": shapes,
                   "rank": part[0], "ranks": part[1], "decay": self.decay}, path)

    @torch.no_grad()
    def restore(self, checkpoint: Checkpoint, report: Callable[[str], Any] = print) -> None:
        """The average ``checkpoint`` holds (exactly), or the current weights when it holds none."""
        if not has_average(checkpoint):
            report(f"[distgan] {checkpoint.path} holds no average of the generator's weights: {FIELD} starts "
                   "it from the weights it resumes")
            for name, value in self.engine.local_parameters().items():
                self.average[name].copy_(value)
            return
        saved = self._saved_share(checkpoint)
        if saved.keys() != self.average.keys():
            raise ValueError(f"{checkpoint.path}: its average of the generator's weights names other parameters")
        for name, value in saved.items():
            self.average[name].copy_(value)

    def _saved_share(self, checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
        """What this rank keeps of the saved average: its own partition file when as many ranks
        wrote it, else its share cut out of the whole (gathered from any number of partitions)."""
        part = self.engine.partition()
        written_by = partition_count(checkpoint)
        if part is not None and written_by == part[1]:
            return read_partition(checkpoint, part[0])["partition"]
        if written_by:
            whole = assemble([read_partition(checkpoint, rank) for rank in range(written_by)])
        else:
            whole = load_file(write_path(checkpoint.path, None))["average"]
        if part is None:
            return whole
        rank, ranks = part
        share = {}
        for name, value in whole.items():
            size = partition_size(value.numel(), ranks)
            flat = F.pad(value.reshape(-1), (0, size * ranks - value.numel()))
            share[name] = flat[rank * size:(rank + 1) * size]
        return share


@contextlib.contextmanager
def applied(ema: ModelEMA | None) -> Iterator[None]:
    """``ema.applied()``, or nothing without an average."""
    if ema is None:
        yield
    else:
        with ema.applied():
            yield
