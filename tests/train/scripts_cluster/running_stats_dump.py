"""``distgan train`` that also writes every rank's BatchNorm running statistics whenever it saves a
checkpoint, for the tests of ``dist.batchnorm`` (``state_dump.py`` writes rank 0's whole state only).

Started like ``python -m distgan`` (directly or under a launcher), with ``STATE_DUMP`` naming a
folder: each rank writes ``rank-R-step-N.pt``, ``{model: {buffer name: tensor}}`` for every
running mean, running variance and batch count.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from distgan.cli import main
from distgan.train.trainer import Trainer

SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


def install() -> None:
    save = Trainer.save_checkpoint

    def dumping_save(trainer: Trainer, *args, **kwargs):
        path = save(trainer, *args, **kwargs)
        stats = {engine.name: {name: buffer.detach().cpu().clone() for name, buffer in engine.model.named_buffers()
                               if name.endswith(SUFFIXES)} for engine in (trainer.g, trainer.d)}
        folder = Path(os.environ["STATE_DUMP"])
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(stats, folder / f"rank-{trainer.info.rank}-step-{trainer.state.step}.pt")
        return path

    Trainer.save_checkpoint = dumping_save


if __name__ == "__main__":
    install()
    sys.exit(main(sys.argv[1:]))
