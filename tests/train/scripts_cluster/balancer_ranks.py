"""Loss-balancer calls (``distgan.losses.balancer``) with the norms averaged over the ranks
(``distgan.train.codebook_sync.ProcessGroupReducer``), each rank on a batch of its own (gloo, CPU).

Started once per rank with torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT):
``balancer_ranks.py OUT`` writes ``OUT/rank-R.pt``: per call the scales, the averaged norms, the
gradient, this rank's own norms and the all-reduces the call made, and the state at the end.
Rank r holds ``CLIPS[r]`` clips of its own scale, so the ranks' norms differ.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from distgan.losses.balancer import Balancer
from distgan.train.codebook_sync import ProcessGroupReducer

STEPS, CLIPS, SAMPLES, DECAY = 4, (3, 1), 128, 0.8
WEIGHTS = {"g/mel": 45.0, "g/adv": 1.0, "g/fm": 2.0}


def batch(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(audio, target) of rank ``rank`` at ``step``."""
    generator = torch.Generator().manual_seed(100 * rank + step)
    audio = torch.randn(CLIPS[rank], 1, SAMPLES, generator=generator) * (1 + 2 * rank + step)
    return audio, torch.randn(CLIPS[rank], 1, SAMPLES, generator=generator)


def terms(audio: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"g/mel": (audio - target).abs().mean(), "g/adv": 30.0 * (1 - torch.tanh(audio)).pow(2).mean(),
            "g/fm": 1e-2 * (audio - 0.5 * target).pow(2).sum()}


def own_norms(audio: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """This rank's per-term norms (mean over its clips of each clip's gradient norm), float64."""
    leaf = audio.clone().requires_grad_()
    found = terms(leaf, target)
    grads = [torch.autograd.grad(found[name], [leaf], retain_graph=True)[0] for name in WEIGHTS]
    return torch.stack([g.double().flatten(1).norm(dim=1).mean() for g in grads])


class CountingReducer:
    def __init__(self, inner: ProcessGroupReducer) -> None:
        self.inner, self.all_reduces = inner, 0

    def all_reduce_sum(self, tensor: torch.Tensor) -> None:
        self.all_reduces += 1
        self.inner.all_reduce_sum(tensor)


def run(out: Path, rank: int) -> None:
    counter = CountingReducer(ProcessGroupReducer())
    balancer = Balancer(ema_decay=DECAY, reducer=counter)
    calls = []
    for step in range(STEPS):
        audio, target = batch(rank, step)
        before = counter.all_reduces
        leaf = audio.clone().requires_grad_()
        result = balancer(terms(leaf, target), WEIGHTS, leaf)
        calls.append({"scales": torch.stack([result.scales[n] for n in WEIGHTS]),
                      "norms": torch.stack([result.norms[n] for n in WEIGHTS]), "grad": result.grad,
                      "own_norms": own_norms(audio, target), "all_reduces": counter.all_reduces - before})
    torch.save({"calls": calls, "state": balancer.state_dict()}, out / f"rank-{rank}.pt")


if __name__ == "__main__":
    dist.init_process_group("gloo")
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    run(out, dist.get_rank())
    dist.barrier()
    sys.stdout.flush()
    os._exit(0)  # see distgan.cli._exit_now_if_distributed
