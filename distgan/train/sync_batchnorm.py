"""BatchNorm under data parallelism (``dist.batchnorm``), applied to models that know nothing of ranks.

Each rank holds a slice of the batch; a BatchNorm layer left alone normalises by its slice's
statistics and keeps running estimates of its slice only. Two choices, both giving every rank
the same running estimates in every checkpoint:

- ``sync`` (the default): the batch statistics are those of the whole batch over every rank, as
  one device would see it, by all-reducing per-channel sums in the forward (and, through
  autograd, their gradients in the backward). On CUDA that is ``torch.nn.SyncBatchNorm``; it
  refuses CPU tensors, so on CPU (gloo) ``AllReduceBatchNorm`` does the same in two all-reduces:
  the sum, then the sum of squares about the global mean (no cancellation as in E[x^2] - E[x]^2).
  The running estimates are then identical on every rank with no further exchange.
- ``local``: each rank normalises by its own slice (no collective in the forward, the classic DDP
  behaviour). Before each checkpoint the running estimates are averaged over ranks
  (``average_running_stats``): the mean of the ranks' running means is the running mean of the
  whole batch; the mean of their variances leaves out the spread between the slices' means.
  Training itself never reads them (a training-mode forward normalises by the batch), and their
  update is linear (``r <- (1 - momentum) r + momentum x``, the same momentum on every rank), so
  averaging them where a checkpoint reads them gives what averaging after every step would, to
  rounding, for one all-reduce per checkpoint instead of one per model and step (``skips.py``:
  one collective per step).

DDP's default ``broadcast_buffers`` (rank 0's buffers copied to every rank before each forward)
is switched off (``ddp_engine``, for every model): under ``local`` it would throw the other
ranks' statistics away, under ``sync`` it would copy what is already equal.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, _BatchNorm) for m in module.modules())


class AllReduceBatchNorm(_BatchNorm):
    """BatchNorm over the batch of every rank of the default process group, on any backend.

    Same parameters, buffers and state-dict keys as ``nn.BatchNorm1d/2d/3d``: a checkpoint loads
    into the plain model. Input ``[B, C, ...]``; in eval mode, plain BatchNorm on the running estimates.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input [B, C, ...], got {x.dim()}D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if not self.training or not dist.is_initialized():
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce  # all_reduce with a backward

        xf = x.float()
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.full((1,), x.numel() / x.shape[1], dtype=torch.float32, device=x.device)
        totals = all_reduce(torch.cat([xf.sum(dims), count]))
        n = totals[-1]
        centred = xf - (totals[:-1] / n).view(shape)
        var = all_reduce(centred.square().sum(dims)) / n
        if self.track_running_stats:
            self._update_running_stats((totals[:-1] / n).detach(), var.detach(), n.detach())
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, n: torch.Tensor) -> None:
        """As ``nn.BatchNorm``: exponential (or, with momentum None, cumulative) averages; the
        running variance is the unbiased one, n / (n - 1) times the batch's."""
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        unbiased = var * n / (n - 1).clamp(min=1)
        self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)


def _all_reduce_batchnorm(norm: _BatchNorm) -> AllReduceBatchNorm:
    new = AllReduceBatchNorm(norm.num_features, norm.eps, norm.momentum, norm.affine, norm.track_running_stats)
    new.load_state_dict(norm.state_dict())
    new.train(norm.training)
    return new.to(next(norm.buffers()).device) if list(norm.buffers()) else new


def _convert_on_cpu(module: nn.Module) -> nn.Module:
    if isinstance(module, _BatchNorm) and not isinstance(module, AllReduceBatchNorm):
        return _all_reduce_batchnorm(module)
    for name, child in module.named_children():
        module.add_module(name, _convert_on_cpu(child))
    return module


def convert_batchnorm(module: nn.Module, mode: str, world_size: int, cuda: bool) -> nn.Module:
    """``module`` with its BatchNorm layers synchronised over ranks when ``mode`` is ``sync`` and
    there are several ranks (``torch.nn.SyncBatchNorm`` on CUDA, ``AllReduceBatchNorm`` on CPU);
    otherwise ``module`` unchanged. Class and state-dict keys of ``module`` itself stay the same."""
    if mode != "sync" or world_size == 1 or not has_batchnorm(module):
        return module
    if cuda:
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert_on_cpu(module)


@torch.no_grad()
def average_running_stats(module: nn.Module) -> None:
    """Replace every BatchNorm layer's running mean and variance by their mean over ranks (one
    all-reduce for all layers; every rank must call this at the same point)."""
    buffers = [b for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats
               for b in (m.running_mean, m.running_var)]
    if not buffers or not (dist.is_initialized() and dist.get_world_size() > 1):
        return
    flat = torch.cat([b.float().reshape(-1) for b in buffers])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for b in buffers:
        b.copy_(flat[offset:offset + b.numel()].view_as(b))
        offset += b.numel()
