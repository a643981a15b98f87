"""A few DDP steps of a small WaveGAN generator whose BatchNorm spans the ranks as ``dist.batchnorm``
says (``distgan.train.sync_batchnorm``), each rank on its slice of one batch (gloo, CPU).

Started once per rank with torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT):
``batchnorm_ranks.py OUT`` writes ``OUT/MODE-rank-R.pt`` (the state dict after the steps) for both
modes, ``sync`` and ``local``. ``reference(OUT_FILE)``, in one process, runs the same steps on the whole batch with
plain BatchNorm: what ``sync`` must equal.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from distgan.families.wavegan.config import WaveGANConfig
from distgan.families.wavegan.models import WaveGANGenerator
from distgan.train.sync_batchnorm import average_running_stats, convert_batchnorm

STEPS, BATCH = 3, 8
SHAPES = WaveGANConfig(latent_dim=8, initial_length=4, generator_channels=[8, 6, 4], upsample_strides=[2, 2],
                       kernel_size=5)


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    noise = torch.randn(STEPS, BATCH, SHAPES.latent_dim, generator=generator)
    # Targets of unequal scale per channel and clip: the statistics of a slice differ from the batch's.
    targets = torch.randn(STEPS, BATCH, 1, SHAPES.output_samples(), generator=generator) * torch.linspace(0.2, 1, BATCH
                                                                                                         ).view(1, -1, 1, 1)
    return noise, targets


def train(model: nn.Module, rows: slice, after_step=lambda: None) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    noise, targets = batch()
    for step in range(STEPS):
        loss = (model(noise[step, rows]) - targets[step, rows]).square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        after_step()


def reference() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = WaveGANGenerator(SHAPES)
    train(model, slice(None))
    return model.state_dict()


def run(out: Path, mode: str, rank: int, world: int) -> None:
    torch.manual_seed(0)
    model = convert_batchnorm(WaveGANGenerator(SHAPES), mode, world, cuda=False)
    wrapped = nn.parallel.DistributedDataParallel(model, broadcast_buffers=False)
    share = BATCH // world
    average = (lambda: average_running_stats(model)) if mode == "local" else (lambda: None)
    train(wrapped, slice(rank * share, (rank + 1) * share), average)
    torch.save(model.state_dict(), out / f"{mode}-rank-{rank}.pt")


if __name__ == "__main__":
    dist.init_process_group("gloo")
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for mode in ("sync", "local"):
        run(out, mode, dist.get_rank(), dist.get_world_size())
    dist.barrier()
    sys.stdout.flush()
    os._exit(0)  # see distgan.cli._exit_now_if_distributed
