"""``distgan train`` with faults injected into one rank, for the tests of what the loop does then.

Started like ``python -m distgan``, one process per rank (or under torchrun): the arguments are
``distgan``'s. The faults are chosen in the environment; steps are 1-based, as logged:

- ``NAN_RANK`` and ``NAN_STEPS`` (``"5"``, ``"5-7"``, ``"3,9-10"``): that rank's generator mel
  loss (``losses.mel_l1_loss``, as the trainer calls it) is NaN at those steps, each only the
  first time it is trained, so a rolled-back run trains it again cleanly;
- ``NAN_GRAD_STEPS``: at those steps, on every rank, the mel loss keeps its value but its
  gradient is NaN (``0 * sqrt'(0)``): every term is finite, the optimizer skips the update;
- ``STALL_RANK``, ``STALL_STEP`` and ``STALL_SECONDS``: that rank sleeps inside the data iterator
  while taking the batch of that step, as a dead data source would.
"""

from __future__ import annotations

import os
import sys
import time

import torch

from distgan.cli import main
from distgan.losses import gan as losses
from distgan.train.trainer import Trainer


def parse_steps(text: str) -> set[int]:
    steps: set[int] = set()
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        steps.update(range(int(first), int(last or first) + 1))
    return steps


class Faults:
    def __init__(self, rank: int) -> None:
        self.rank = rank
        self.step = 0  # the step being trained, 1-based
        self.nan_steps = parse_steps(os.environ.get("NAN_STEPS", ""))
        self.nan_rank = int(os.environ.get("NAN_RANK", "-1"))
        self.nan_grad_steps = parse_steps(os.environ.get("NAN_GRAD_STEPS", ""))
        self.stall_rank = int(os.environ.get("STALL_RANK", "-1"))
        self.stall_step = int(os.environ.get("STALL_STEP", "0"))
        self.stall_seconds = float(os.environ.get("STALL_SECONDS", "0"))

    def install(self) -> None:
        train_step, batches, mel_l1_loss = Trainer.train_step, Trainer._batches, losses.mel_l1_loss
        faults = self

        def tracked_train_step(trainer: Trainer, micro_batches: list[dict]) -> dict:
            faults.step = trainer.state.step + 1
            return train_step(trainer, micro_batches)

        def stalling_batches(trainer: Trainer):
            for batch in batches(trainer):
                if faults.rank == faults.stall_rank and trainer.state.step + 1 == faults.stall_step:
                    print(f"[faulty_train] rank {faults.rank}: data stalls at step {faults.stall_step}", flush=True)
                    time.sleep(faults.stall_seconds)
                yield batch

        def poisoned_mel_l1_loss(real_mel, fake_mel):
            loss = mel_l1_loss(real_mel, fake_mel)
            if faults.rank == faults.nan_rank and faults.step in faults.nan_steps:
                faults.nan_steps.discard(faults.step)
                print(f"[faulty_train] rank {faults.rank}: NaN mel loss at step {faults.step}", flush=True)
                return loss * float("nan")
            if faults.step in faults.nan_grad_steps:
                return loss + 0.0 * torch.sqrt(loss - loss.detach())  # same value, NaN gradient
            return loss

        Trainer.train_step = tracked_train_step
        Trainer._batches = stalling_batches
        losses.mel_l1_loss = poisoned_mel_l1_loss


if __name__ == "__main__":
    Faults(int(os.environ.get("RANK", "0"))).install()
    sys.exit(main(sys.argv[1:]))
