"""Count, on this rank, the collectives and host reads of each training step, for
``tests/train/test_step_syncs_ranks.py``.

Started once per rank (``ranks.py``) as ``sync_counts.py SPEC``, SPEC a JSON object
``{"out": folder, "steps": N, "cases": {name: {"config": path, "overrides": [...]}}}``. For each
case in turn this rank trains ``N + 1`` steps through ``Trainer.fit`` and writes
``out/NAME-rank-R.json``: for each of the first ``N`` steps the calls it made, by kind, each named
with the file and line that made it, and a digest of each model's buffers at the end. The last step is left out: ``fit`` logs and checkpoints it.

A step is what ``fit`` runs in its ``step`` phase (the training step, logging and validation
checks, the checkpoint check), less the ``data`` phase: the loader's own reads (a shuffle seed from
the CPU generator, a counter) are not the loop's synchronisation and stop nothing on a device.

Counted: every ``torch.distributed`` collective or point-to-point call as the caller makes it
(one call made inside another, such as ``all_gather_object``'s ``all_gather``, is that one call),
and every read of a tensor's value on the host (``HOST_READS``) outside a collective. Not counted:
what C++ does by itself, which is DDP's gradient-bucket all-reduces in its reducer (the gradient
communication itself, overlapped with the backward, not a synchronisation of the loop).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.distributed as dist

from distgan.config import load_config
from distgan.losses import gan as losses
from distgan.train.trainer import Trainer

# Every way a tensor's value reaches the host (``.numpy()`` refuses device tensors).
HOST_READS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__")
COLLECTIVES = ("all_reduce", "all_reduce_coalesced", "all_gather", "all_gather_into_tensor", "_all_gather_base",
               "all_gather_coalesced", "all_gather_object", "broadcast", "broadcast_object_list",
               "_broadcast_coalesced", "barrier", "monitored_barrier", "reduce", "reduce_scatter",
               "reduce_scatter_tensor", "_reduce_scatter_base", "all_to_all", "all_to_all_single", "gather",
               "gather_object", "scatter", "scatter_object_list", "send", "recv", "isend", "irecv",
               "batch_isend_irecv")
KINDS = ("collectives", "host reads")


class StepCounter:
    """Calls by kind, one record per step while ``phase`` says a step runs (``Trainer``'s phase timer)."""

    def __init__(self) -> None:
        self.steps: list[dict[str, list[str]]] = []
        self.counting = False
        self.depth = 0  # inside a counted collective: its own calls are part of it

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if name == "step":
            self.steps.append({kind: [] for kind in KINDS})
        was, self.counting = self.counting, name != "data" and (name == "step" or self.counting)
        try:
            yield
        finally:
            self.counting = was

    def install(self) -> None:
        modules = [dist, dist.distributed_c10d]
        for name in COLLECTIVES:
            for module in modules:
                if hasattr(module, name):
                    setattr(module, name, self._wrap(getattr(module, name), name, "collectives"))
        for name in HOST_READS:
            setattr(torch.Tensor, name, self._wrap(getattr(torch.Tensor, name), f"Tensor.{name}", "host reads"))

    def _wrap(self, original: Callable, name: str, kind: str) -> Callable:
        def counted(*args, **kwargs):
            if not self.counting or self.depth:
                return original(*args, **kwargs)
            self.steps[-1][kind].append(f"{name} from {caller()}")
            self.depth += 1
            try:
                return original(*args, **kwargs)
            finally:
                self.depth -= 1

        return counted


def caller() -> str:
    """Where the counted call was made: the first frame outside this file and the communication
    wrappers (DeepSpeed's ``deepspeed.comm``)."""
    frame = sys._getframe(2)
    while frame.f_back is not None and ("/deepspeed/comm/" in frame.f_code.co_filename
                                        or frame.f_code.co_filename == __file__):
        frame = frame.f_back
    return f"{frame.f_globals.get('__name__')}:{frame.f_lineno} ({frame.f_code.co_name})"


def count_case(counter: StepCounter, name: str, case: dict, out: Path, steps: int) -> None:
    cfg = load_config(Path(case["config"]), [*case["overrides"], f"train.max_steps={steps + 1}"])
    counter.steps = []
    trainer = Trainer(cfg, out / f"run-{name}", phase_timer=counter.phase)
    last = LastStep(trainer, case, steps)
    trainer.fit()
    buffers = {engine.name: buffer_digest(engine.model) for engine in (trainer.g, trainer.d)}
    report = {"steps": counter.steps[:steps], "buffers": buffers, "changed": last.changed,
              "validated": last.validated, "bad_terms": trainer.gan_step.bad_terms}
    (out / f"{name}-rank-{trainer.info.rank}.json").write_text(json.dumps(report, indent=1))


class LastStep:
    """The case's faults, at its last step (not counted) and on the ranks it names: ``nan_rank``'s
    generator mel loss is NaN, ``clock_rank``'s validation clock says a validation is due. Records
    which models' weights that step changed (``changed``) and the steps validated after (``validated``)."""

    def __init__(self, trainer: Trainer, case: dict, steps: int) -> None:
        self.trainer, self.steps = trainer, steps
        rank = trainer.info.rank
        self.nan = case.get("nan_rank") == rank
        self.clock = case.get("clock_rank") == rank
        self.changed: dict[str, bool] = {}
        self.validated: list[int] = []
        train_step, run, clock_due = trainer.train_step, trainer.validator.run, trainer.validator.clock_due
        mel_l1_loss = losses.mel_l1_loss
        poisoned = [False]

        def last_train_step(micro_batches: list[dict]) -> dict:
            if trainer.state.step != steps:
                return train_step(micro_batches)
            engines = (trainer.g, trainer.d)
            before = [whole_parameters(engine) for engine in engines]
            poisoned[0] = self.nan
            try:
                return train_step(micro_batches)
            finally:
                poisoned[0] = False
                self.changed = {engine.name: any(not torch.equal(a, b) for a, b in zip(old, whole_parameters(engine),
                                                                                         strict=True))
                                for engine, old in zip(engines, before, strict=True)}

        def validation_run(generator, logger, step: int) -> dict:
            self.validated.append(step)
            return run(generator, logger, step)

        trainer.train_step = last_train_step
        trainer.validator.run = validation_run
        trainer.validator.clock_due = lambda: (self.clock and trainer.state.step == steps) or clock_due()
        if self.nan:
            losses.mel_l1_loss = lambda *args: mel_l1_loss(*args) * (float("nan") if poisoned[0] else 1.0)


def whole_parameters(engine) -> list[torch.Tensor]:
    """Copies of a model's parameters, gathered whole under ZeRO-3 (every rank calls this together)."""
    with engine.full_parameters() as model:
        return [p.detach().clone() for p in model.parameters()]


def buffer_digest(model: torch.nn.Module) -> str:
    """A digest of every buffer's bytes, to compare between ranks."""
    digest = hashlib.sha256()
    for name, buffer in model.named_buffers():
        digest.update(name.encode())
        digest.update(buffer.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def main() -> None:
    spec = json.loads(sys.argv[1])
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    counter = StepCounter()
    counter.install()
    for name, case in spec["cases"].items():
        count_case(counter, name, case, out, spec["steps"])
        # The next case builds its engines afresh, maybe another kind (DDP, then DeepSpeed): Accelerate's
        # process-wide state is forgotten; the process group stays.
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)


if __name__ == "__main__":
    main()
