"""Where this process stands in the job, and the few collectives distgan needs.

Training (through its engines) and ``distgan evaluate`` both describe a process with
``ProcessInfo``. Training's process group is created by Accelerate inside the engine builder;
``join_process_group`` is for commands that need one without Accelerate (evaluation).

Every collective here must be called by all ranks at the same point, and is a no-op in a
single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class ProcessInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    is_main: bool
    deepspeed_stage: int | None = None  # None: DDP, a single process, or not training


def default_backend(backend: str = "auto") -> str:
    """``auto``: nccl where CUDA is available, gloo otherwise."""
    if backend != "auto":
        return backend
    return "nccl" if torch.cuda.is_available() else "gloo"


def join_process_group(device: str | torch.device, backend: str = "auto",
                       timeout_minutes: float = 30.0) -> ProcessInfo:
    """Join the process group a launcher (torchrun) describes in the environment, if any.

    A CUDA ``device`` becomes this process's local GPU (NCCL's object collectives use the
    current device). Without ``WORLD_SIZE`` in the environment this is a single process.
    """
    device = torch.device(device)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if world_size > 1:
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group(default_backend(backend), timeout=timedelta(minutes=timeout_minutes))
        rank = dist.get_rank()
    return ProcessInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=device,
                       is_main=rank == 0)


def leave_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks, in place (float64 sums stay exact for counts)."""
    if active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


# The latest ``any_rank`` collective, held until the next one replaces it. Its tensor is freed
# by whichever thread drops the collective last; freeing a tensor needs the GIL. Left to gloo's
# worker thread just as the process exits (``any_rank`` is the last collective before exit 75
# and exit 4), that thread finds Python finalizing and the process aborts (SIGABRT, "terminate
# called without an active exception"). Held here, it is freed by the main thread. The process
# group cannot simply be destroyed first: DDP keeps it alive.
_latest_work: list[dist.Work] = []


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any rank (the agreement behind skips and stops)."""
    if not active():
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    work = dist.all_reduce(value, op=dist.ReduceOp.MAX, async_op=True)
    work.wait()
    _latest_work[:] = [work]
    return bool(value.item() > 0)


def any_rank_each(flags: torch.Tensor) -> torch.Tensor:
    """``flags`` (0/1, on ``device``) maxed over ranks in place, each true everywhere if true
    anywhere: one collective and no host read (the caller reads the result once)."""
    if active():
        work = dist.all_reduce(flags, op=dist.ReduceOp.MAX, async_op=True)
        work.wait()
        _latest_work[:] = [work]
    return flags


def barrier() -> None:
    if active():
        dist.barrier()


def all_gather_object(obj: Any) -> list[Any]:
    if not active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def problems_anywhere(problem: object | None) -> str | None:
    """One verdict for all ranks: every rank's problem (None: none), named by rank, or None."""
    found = [(rank, p) for rank, p in enumerate(all_gather_object(None if problem is None else str(problem)))
             if p is not None]
    return "; ".join(f"rank {rank}: {p}" for rank, p in found) or None


def broadcast_object(obj: Any, src: int = 0) -> Any:
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]
