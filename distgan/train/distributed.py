"""The few collectives the loop needs, as no-ops in a single process.

Every function here must be called by all ranks at the same point, like any collective.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


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


def barrier() -> None:
    if active():
        dist.barrier()


def all_gather_object(obj: Any) -> list[Any]:
    if not active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]
