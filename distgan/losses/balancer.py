"""EnCodec's loss balancer: G's loss terms share the gradient at its output audio in the ratio of
their weights, whatever each term's own scale.

Given the audio ``y`` and terms ``l_i(y)`` with weights ``w_i``, the balancer takes each
``g_i = d l_i / d y`` (``torch.autograd.grad``; G is not reached), its norm ``n_i`` (with
``per_batch_item``: the mean over clips of each clip's norm), and an exponential moving average
``avg(n_i)`` of that norm, bias-corrected (``sum_k decay^k n_{t-k} / sum_k decay^k``), and returns
the gradient to send back into G::

    G = sum_i  w_i / sum_j w_j  *  total_norm  *  g_i / (epsilon + avg(n_i))

(``rescale_grads`` false: ``G = sum_i w_i g_i``, the plain weighted sum, with the moving averages
still kept). That is what audiocraft 1.3.0's ``losses.balancer.Balancer`` computes
(``tests/losses/test_balancer.py`` holds it to that, within 1e-5 over several steps), with these
differences, and why:

- **Ranks.** A rank's norms come from its own clips. Here the norms of all terms are averaged over
  the data-parallel ranks (weighted by their clip counts, one all-reduce of ``k + 1`` numbers per
  call) *before* the moving average, through an injected ``SumReducer`` (this module knows nothing
  of ``torch.distributed``; ``distgan.train.codebook_sync.ProcessGroupReducer`` is one). So every
  rank holds the same averages, applies the same scales and checkpoints the same state; audiocraft
  averages each rank's own moving average instead, which is the same number when clip counts
  are equal, as the average is linear.
- **Terms per call.** A call balances the terms it is given that have a non-zero weight (a
  warm-up's mel term alone, then the adversarial ones too); each term's average counts only the
  calls it took part in. audiocraft expects the same terms in every call.
- **Non-finite norms** (a NaN loss on some rank, whose update is skipped anyway) leave every
  average as it was, decided on the device from the reduced norms, so every rank agrees without a
  host read; audiocraft's averages would stay NaN from then on.
- **No host reads**: the averages are float64 device tensors, not Python floats.
- **Repeated passes**: each term's gradient is one pass through the graph, retained; a caller whose
  graph holds a module that must be told of each pass (a ZeRO-3 partitioned discriminator) passes
  ``before_pass``.
- ``ema_decay`` means what it says (0: the last norm alone; 1: the plain mean), and a call whose
  weights add up to 0 returns a zero gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch


class SumReducer(Protocol):
    """How the balancer adds its norms up with the other data-parallel processes'."""

    def all_reduce_sum(self, tensor: torch.Tensor) -> None:
        """Sum ``tensor`` over processes, in place; every process gets the same bits."""


class LocalSum:
    """This process alone."""

    def all_reduce_sum(self, tensor: torch.Tensor) -> None:
        return None


@dataclass
class Balanced:
    """One call's result: ``grad`` to send back into the audio (detached, the audio's dtype and
    shape), and per balanced term its scale (``grad = sum scale_i g_i``) and averaged norm."""

    grad: torch.Tensor
    scales: dict[str, torch.Tensor]
    norms: dict[str, torch.Tensor]


class Balancer:
    """The moving averages live in ``state_dict()`` (per term ``[weighted sum, weight]``, float64),
    so a resumed run continues the same averages."""

    def __init__(self, total_norm: float = 1.0, ema_decay: float = 0.999, per_batch_item: bool = True,
                 epsilon: float = 1e-12, rescale_grads: bool = True, reducer: SumReducer | None = None) -> None:
        self.total_norm, self.ema_decay, self.epsilon = total_norm, ema_decay, epsilon
        self.per_batch_item, self.rescale_grads = per_batch_item, rescale_grads
        self.reducer: SumReducer = reducer if reducer is not None else LocalSum()
        self.averages: dict[str, torch.Tensor] = {}

    def __call__(self, losses: dict[str, torch.Tensor], weights: dict[str, float], audio: torch.Tensor,
                 before_pass: Callable[[], None] | None = None) -> Balanced:
        """Balance the terms of ``losses`` that ``weights`` names with a non-zero weight, each a
        scalar function of ``audio`` (whose graph is kept for G's backward); ``before_pass`` runs
        before each term's gradient pass (a module that must be told of repeated passes)."""
        names = [name for name, weight in weights.items() if weight != 0 and name in losses]
        grads = []
        for name in names:
            if before_pass is not None:
                before_pass()
            grads.append(self._gradient(losses[name], audio))
        norms = self._rank_mean(torch.stack([self._norm(grad) for grad in grads]) if names
                                else audio.new_zeros(0, dtype=torch.float64), audio.shape[0])
        averaged = self._update(names, norms)
        total_weight = sum(weights[name] for name in names)
        if self.rescale_grads:
            shares = [weights[name] / total_weight if total_weight > 0 else 0.0 for name in names]
            ratios = torch.tensor(shares, dtype=torch.float64, device=audio.device)
            scales = ratios * self.total_norm / (self.epsilon + averaged)
        else:
            scales = torch.tensor([float(weights[name]) for name in names], dtype=torch.float64, device=audio.device)
        out = torch.zeros_like(audio, dtype=torch.float32)
        for grad, scale in zip(grads, scales, strict=True):
            out.add_(grad.float() * scale.float())
        return Balanced(out.to(audio.dtype), dict(zip(names, scales, strict=True)),
                        dict(zip(names, averaged, strict=True)))

    @staticmethod
    def _gradient(loss: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        (grad,) = torch.autograd.grad(loss, [audio], retain_graph=True, allow_unused=True)
        return torch.zeros_like(audio) if grad is None else grad

    def _norm(self, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.to(torch.float64)
        if self.per_batch_item:
            return grad.flatten(1).norm(dim=1).mean()
        return grad.norm()

    def _rank_mean(self, norms: torch.Tensor, clips: int) -> torch.Tensor:
        """The norms averaged over ranks, each rank weighted by its clips (per_batch_item) or by 1."""
        weight = float(clips) if self.per_batch_item else 1.0
        packed = torch.cat([norms * weight, norms.new_full((1,), weight)])
        self.reducer.all_reduce_sum(packed)
        return packed[:-1] / packed[-1]

    def _update(self, names: list[str], norms: torch.Tensor) -> torch.Tensor:
        """Move each term's average by its (rank-averaged) norm, unless a norm is not finite;
        returns the bias-corrected averages."""
        if not names:
            return norms
        zero = norms.new_zeros(2)
        before = torch.stack([self.averages.get(name, zero).to(norms.device) for name in names])
        moved = before * self.ema_decay + torch.stack([norms, torch.ones_like(norms)], dim=1)
        after = torch.where(torch.isfinite(norms).all(), moved, before)
        for name, row in zip(names, after, strict=True):
            self.averages[name] = row
        return after[:, 0] / after[:, 1]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Per term ``[sum of decayed norms, sum of decayed weights]`` (float64, on the CPU)."""
        return {name: row.detach().cpu().clone() for name, row in self.averages.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor], device: torch.device | str = "cpu") -> None:
        self.averages = {name: torch.as_tensor(row, dtype=torch.float64).to(device).clone()
                         for name, row in state.items()}
