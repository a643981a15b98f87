"""Skipped updates: a non-finite loss or gradient skips an update on every rank, at the cost of
one collective and one host read per step.

Each host read of a device value (``.item()``, ``bool()``, ``float()``) stalls the host until
the device's queue drains, and each collective is a round trip between ranks; a step used to make
about seven (a read per loss term, an agreement per update, a read per gradient norm, the stop
check). Now, where both engines ``skips_on_device`` (one process or DDP with fused AdamW;
DeepSpeed where its own step drops a non-finite update, ``deepspeed_engine.drops_non_finite_updates``):

- no loss is checked before its backward. A non-finite term turns the micro-batch's loss into
  NaN (``guard``), so the gradients it reaches turn NaN, and with them the gradient norm; the
  gradient all-reduce carries the NaN to every rank, so every rank finds the same non-finite
  gradient norm and skips the update: on the device (``DDPEngine.step``: the fused optimizer told
  ``found_inf``), or in DeepSpeed's step, with no collective of distgan's own (with fp16, DDP
  only, the loss scale then backs off, as after an overflow);
- at the end of the step ONE all-reduce of a small tensor ``[stop requested, validation due by the
  clock, D skipped, G skipped]`` and ONE host read of it (``settle``) tell the loop what it needs
  (skip counts, consecutive skips, the stop, ``log.val_every_minutes``); only when an update was
  skipped (rare) do the ranks gather which terms were not finite where, for the message;
- the losses, gradient norms and loss scales stay device tensors; the logger adds them on the
  device and reads them only at log steps (``logger.py``: one more collective there).

Counted on two ranks (``tests/train/test_step_syncs_ranks.py``, which wraps ``torch.distributed``
itself): a DDP step makes exactly that, also with ``log.val_every_minutes`` and with
``dist.batchnorm=local`` (whose running estimates are averaged before a checkpoint instead). DDP's
gradient-bucket all-reduces run in its C++ reducer and are not counted; its buffer broadcast
before each forward is off (``ddp_engine``). A DeepSpeed ZeRO-2 step (fp32, gloo) makes 7
collectives and 3 host reads per rank, distgan's one and one: per model DeepSpeed all-reduces the
gradients, all-reduces the gradient norm and all-gathers the updated parameters, and reads on the
host whether that norm is finite (``is_invalid_grad_norm``: the check that drops the update). Its
norm is kept as the device tensor DeepSpeed leaves; the skip is DeepSpeed's host-side count.

The values of an update skipped for a non-finite loss term are not logged. Elsewhere (an
optimizer that is not fused, or a DeepSpeed that is not known to drop a non-finite update) each
micro-batch's loss terms are read on the host and agreed (one all-reduce) before its backward,
and a non-finite one skips the update there, as before. The step still ends with the same agreement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from distgan import distributed
from distgan.distributed import ProcessInfo
from distgan.train.engine import ModelEngine

Values = dict[str, torch.Tensor | float]
REQUESTS = ("stop", "validate")  # a rank's requests, agreed with the skips: any rank's is every rank's
UPDATES = ("d", "g")  # the order of the flags after the requests


@dataclass
class Update:
    """One model's update in this step: what it logs, whether it was skipped, which terms it checked."""

    values: Values = field(default_factory=dict)
    skipped: torch.Tensor | bool = False
    checks: list[tuple[list[str], torch.Tensor | list[bool]]] = field(default_factory=list)


class SkipGuard:
    """``guard`` each micro-batch's loss, ``record`` each engine's step, ``settle`` once per step."""

    def __init__(self, info: ProcessInfo, on_device: bool) -> None:
        self.info, self.on_device = info, on_device
        self.updates: dict[str, Update] = {}
        self.bad_terms = ""  # which loss terms were last not finite, and where

    def begin(self) -> None:
        self.updates = {}

    def guard(self, engine: ModelEngine, terms: dict[str, torch.Tensor], total: torch.Tensor
              ) -> torch.Tensor | None:
        """The loss to backpropagate for ``total`` made of ``terms``; None when the update is to
        be skipped now (host checks only, every rank agreeing)."""
        update = self.updates.setdefault(engine.name[0], Update())
        names = list(terms)
        if self.on_device:
            finite = torch.stack([torch.isfinite(value).all() for value in terms.values()])
            update.checks.append((names, finite))
            return total * torch.where(finite.all(), 1.0, float("nan"))
        flags = [bool(torch.isfinite(value).all()) for value in terms.values()]
        update.checks.append((names, flags))
        if distributed.any_rank(not all(flags), self.info.device):
            engine.zero_grad()
            update.skipped, update.values = True, {}
            return None
        return total

    def record(self, engine: ModelEngine, values: Values, skipped: torch.Tensor | bool) -> None:
        """``engine`` stepped: ``values`` to log unless ``skipped`` (maybe a device flag)."""
        update = self.updates.setdefault(engine.name[0], Update())
        update.values, update.skipped = values, skipped

    def skipped(self, key: str) -> torch.Tensor | bool:
        """Whether this step's update of ``key`` ("d", "g") was skipped, as this rank knows it (a
        device flag where the engine skips on the device; every rank's verdict is the same)."""
        update = self.updates.get(key)
        return update.skipped if update is not None else False

    def settle(self, requests: dict[str, bool]) -> tuple[Values, list[str], dict[str, bool]]:
        """Every rank: the values to log, the updates skipped on any rank and which of
        ``REQUESTS`` any rank made (one collective, one host read)."""
        flags = torch.zeros(len(REQUESTS) + len(UPDATES), device=self.info.device)
        for i, key in enumerate(REQUESTS):
            flags[i] = float(requests.get(key, False))
        for i, key in enumerate(UPDATES, len(REQUESTS)):
            if key in self.updates:
                flags[i] = self.updates[key].skipped
        agreed = distributed.any_rank_each(flags).tolist()
        skipped = [key for key, flag in zip(UPDATES, agreed[len(REQUESTS):], strict=True) if flag]
        unlogged = self._explain(skipped) if skipped else set()
        values: Values = {}
        for key, update in self.updates.items():
            if key not in unlogged:
                values.update(update.values)
        return values, skipped, {key: bool(flag) for key, flag in zip(REQUESTS, agreed, strict=False)}

    def _explain(self, skipped: list[str]) -> set[str]:
        """Rare, and every rank is here: tell every rank which terms failed where (``bad_terms``).
        The updates with a non-finite loss term on some rank, whose values are not logged (an
        update skipped for its gradients alone logs its finite losses and its gradient norm)."""
        mine = [(key, name) for key in skipped for names, finite in self.updates[key].checks
                for name, ok in zip(names, finite.tolist() if torch.is_tensor(finite) else finite, strict=True)
                if not ok]
        per_rank = distributed.all_gather_object(mine)
        models = {"d": "discriminator", "g": "generator"}
        self.bad_terms = (", ".join(f"{name} (rank {rank})" for rank, found in enumerate(per_rank) for _, name in found)
                          or " and ".join(f"the {models[key]}'s gradients" for key in skipped))
        return {key for found in per_rank for key, _ in found}
