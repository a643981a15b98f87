"""An exponential moving average of the generator's weights (``train.ema_decay``), as audiocraft
keeps one (decay 0.99, every step): after each generator update that was applied,
``average = lerp(average, weights, 1 - decay)``, starting from the weights training starts with.

- **What is averaged.** The parameters, held in fp32 whatever the training precision (bf16 or fp16
  weights are cast as they are averaged), in one ``torch._foreach_lerp_`` over all of them. Buffers
  are not: an averaged model takes the live model's (BatchNorm's running estimates, spectral norm's
  vectors, a codec's codebook statistics are estimates of their own, not weights an optimizer moved).
- **Where, per engine** (``ModelEngine.local_parameters``). One process, DDP and DeepSpeed ZeRO-1/2:
  every rank holds the whole parameters (ZeRO-1/2 partition only the optimizer state and gradients),
  so every rank keeps the whole average, 4 bytes per parameter, and updates it from its own copy of
  the weights, which is the same on every rank: no collective, ever. ZeRO-3: each rank keeps the
  average of its own partition of each parameter only (``param.ds_tensor``, ``ceil(numel / ranks)``
  elements), ``4 / ranks`` bytes per parameter, updated from that partition without a gather.
- **Skipped updates** (``skips.py``) leave the average where it is: the step's flag is a host
  ``True`` (skipped before the backward, or DeepSpeed's count), or a device flag (DDP's
  ``~isfinite(grad norm)``), which sets the interpolation weight to 0 on the device, so the update
  reads nothing on the host. Every rank reaches the same verdict, so the ranks' averages stay one.
- **Validation** runs on the average (``applied``): the average is written into the engine's own
  parameters (ZeRO-3: into the partitions, then the parameters it keeps gathered, its persistent
  ones, gathered again, as its own step does) and the weights are put back bit for bit after.
- **Checkpoint** (``save``/``restore``; the format is ``distgan.checkpoint.ema``'s). With the whole
  average, rank 0 writes it as one file. Under ZeRO-3 every rank writes its partition to its own
  file, nothing is gathered at save time; inference and export (``--ema``) gather it on the host by
  concatenating the partition files, and a resume on the same number of ranks reads each rank's own
  file back exactly (on another number, or another engine, each rank cuts its share out of the whole).
  A checkpoint without an average (the setting turned on mid-run) starts it from the resumed weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from distgan.checkpoint.ema import (
    FIELD,
    FULL,
    average_state_dict,
    has_average,
    partition,
    partition_count,
    partition_file,
)
from distgan.checkpoint.files import load_file, save_file
from distgan.checkpoint.format import Checkpoint
from distgan.train.engine import ModelEngine


class ModelEMA:
    """The fp32 average of ``engine``'s parameters (this rank's partition of them under ZeRO-3)."""

    def __init__(self, engine: ModelEngine, decay: float) -> None:
        self.engine, self.decay = engine, decay
        with torch.no_grad():
            self.average = {name: t.float().clone() for name, t in engine.local_parameters().items()}

    @classmethod
    def configured(cls, decay: float | None, engine: ModelEngine) -> ModelEMA | None:
        """The average ``train.ema_decay`` asks for, or None when it is null."""
        return None if decay is None else cls(engine, decay)

    def nbytes(self) -> int:
        """Bytes of the average on this rank."""
        return sum(t.numel() * t.element_size() for t in self.average.values())

    @torch.no_grad()
    def update(self, skipped: torch.Tensor | bool) -> None:
        """After a generator step; ``skipped``: whether it dropped the update (maybe a device flag)."""
        if not torch.is_tensor(skipped) and skipped:
            return
        averages = list(self.average.values())
        live = [t.float() for t in self.engine.local_parameters().values()]  # no copy when fp32
        weight: torch.Tensor | float = 1.0 - self.decay
        if torch.is_tensor(skipped):  # no host read: weight 0 on the device when the update was dropped
            weight = torch.where(skipped.to(averages[0].device), 0.0, weight)
        torch._foreach_lerp_(averages, live, weight)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Inside, the engine's parameters are the average; after, its own, bit for bit."""
        live = list(self.engine.local_parameters().values())
        with torch.no_grad():
            saved = [t.clone() for t in live]
            torch._foreach_copy_(live, list(self.average.values()))
        self.engine.local_parameters_changed()
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(live, saved)
            self.engine.local_parameters_changed()

    def save(self, folder: Path, rank: int) -> None:
        """Every rank: write the average into the checkpoint folder being written."""
        cpu = {name: value.cpu() for name, value in self.average.items()}
        shared = self.engine.partition()
        if shared is None:
            if rank == 0:
                (folder / FULL).parent.mkdir(parents=True, exist_ok=True)
                save_file({"average": cpu}, folder / FULL)
            return
        path = folder / partition_file(rank)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({"partition": cpu, "shapes": self.engine.parameter_shapes(), "ranks": shared[1]}, path)

    @torch.no_grad()
    def restore(self, checkpoint: Checkpoint, report: Callable[[str], Any] = print) -> None:
        """The average ``checkpoint`` holds, exactly; the resumed weights where it holds none."""
        if not has_average(checkpoint):
            report(f"[distgan] {checkpoint.path} holds no average of the generator's weights: {FIELD} starts "
                   "it from the weights it resumes")
            torch._foreach_copy_(list(self.average.values()), list(self.engine.local_parameters().values()))
            return
        saved = self._saved_share(checkpoint)
        if saved.keys() != self.average.keys():
            raise ValueError(f"{checkpoint.path}: its average of the generator's weights names other parameters")
        for name, value in saved.items():
            self.average[name].copy_(value)

    def _saved_share(self, checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
        """What this rank keeps of the saved average: its own partition file where as many ranks
        wrote one, else its share cut out of the whole."""
        shared = self.engine.partition()
        if shared is not None and partition_count(checkpoint) == shared[1]:
            return load_file(checkpoint.path / partition_file(shared[0]))["partition"]
        whole = average_state_dict(checkpoint)
        if shared is None:
            return whole
        return {name: partition(value, *shared) for name, value in whole.items()}


@contextlib.contextmanager
def applied(ema: ModelEMA | None) -> Iterator[None]:
    """``ema.applied()``, or nothing without an average."""
    if ema is None:
        yield
    else:
        with ema.applied():
            yield
