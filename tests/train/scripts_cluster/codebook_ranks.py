"""Training steps of an EMA residual VQ alone (``distgan.models.ema_quantize``) with its codebooks
spanning the ranks (``distgan.train.codebook_sync``), each rank on its slice of one batch (gloo, CPU).

Started once per rank with torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT):
``codebook_ranks.py OUT`` writes ``OUT/rank-R.pt``: the state dict after every step, the
collectives of every step, and what each rank raised when the ranks' vector counts differ.
``reference()``, in one process, runs the same steps on the whole batch.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from distgan.models.ema_quantize import EMAResidualVQ, LocalReducer, StatisticsReducer
from distgan.train.codebook_sync import ProcessGroupReducer, attach_codebook_reducers

STEPS, BATCH, DIM, FRAMES, SIZE, LAYERS = 5, 4, 4, 6, 16, 2
THRESHOLD = 2  # 24 vectors a step for 16 codes: codes fall below 2 and restart


def quantizer(n_q: int = LAYERS) -> EMAResidualVQ:
    return EMAResidualVQ(DIM, n_q, SIZE, kmeans_iters=4, threshold_ema_dead_code=THRESHOLD, seed=5).train()


def batches() -> torch.Tensor:
    """[STEPS, BATCH, DIM, FRAMES], channels of unequal scale."""
    generator = torch.Generator().manual_seed(11)
    return torch.randn(STEPS, BATCH, DIM, FRAMES, generator=generator) * torch.linspace(0.5, 2, DIM).view(1, 1, -1, 1)


class CountingReducer:
    """Counts the collectives a wrapped reducer makes."""

    def __init__(self, inner: StatisticsReducer) -> None:
        self.inner, self.all_reduces, self.all_gathers = inner, 0, 0
        self.world_size, self.rank = inner.world_size, inner.rank

    def all_reduce_sum(self, tensor: torch.Tensor) -> None:
        self.all_reduces += 1
        self.inner.all_reduce_sum(tensor)

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        self.all_gathers += 1
        return self.inner.all_gather(tensor)


def train(model: EMAResidualVQ, rows: slice, counter: CountingReducer | None = None
          ) -> tuple[list[dict[str, torch.Tensor]], list[tuple[int, int]]]:
    states, calls = [], []
    for x in batches():
        before = (counter.all_reduces, counter.all_gathers) if counter else (0, 0)
        model(x[rows])
        if counter:
            calls.append((counter.all_reduces - before[0], counter.all_gathers - before[1]))
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    return states, calls


def reference() -> list[dict[str, torch.Tensor]]:
    model = quantizer()
    assert isinstance(model.layers[0]._codebook.reducer, LocalReducer)
    return train(model, slice(None))[0]


def refusal(model: EMAResidualVQ, frames: int) -> str:
    """What a step of two clips of ``frames`` frames raises ("" if nothing)."""
    try:
        model(torch.randn(2, DIM, frames))
    except ValueError as err:
        return str(err)
    return ""


def run(out: Path, rank: int, world: int) -> None:
    model = quantizer()
    counter = CountingReducer(ProcessGroupReducer())
    assert attach_codebook_reducers(model, world, counter) == LAYERS
    share = BATCH // world
    states, calls = train(model, slice(rank * share, (rank + 1) * share), counter)
    refusals = {}
    fresh, started = quantizer(1), quantizer(1)  # one layer: a refusing rank leaves no collective behind
    for model in (fresh, started):
        attach_codebook_reducers(model, world)
    refusals["init"] = refusal(fresh, FRAMES + rank)  # every rank reads the counts at the k-means start
    assert refusal(started, FRAMES) == ""
    refusals["later"] = refusal(started, FRAMES + rank)  # only a rank whose count changed reads them
    torch.save({"states": states, "calls": calls, "refusals": refusals}, out / f"rank-{rank}.pt")


if __name__ == "__main__":
    dist.init_process_group("gloo")
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    run(out, dist.get_rank(), dist.get_world_size())
    dist.barrier()
    sys.stdout.flush()
    os._exit(0)  # see distgan.cli._exit_now_if_distributed
