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
            caller = sys._getframe(1).f_code
            where = f"{name} from {Path(caller.co_filename).name}:{sys._getframe(1).f_lineno} ({caller.co_name})"
            self.steps[-1][kind].append(where)
            self.depth += 1
            try:
                return original(*args, **kwargs)
            finally:
                self.depth -= 1

        return counted


def count_case(counter: StepCounter, name: str, case: dict, out: Path, steps: int) -> None:
    cfg = load_config(Path(case["config"]), [*case["overrides"], f"train.max_steps={steps + 1}"])
    counter.steps = []
    trainer = Trainer(cfg, out / f"run-{name}", phase_timer=counter.phase)
    trainer.fit()
    buffers = {engine.name: buffer_digest(engine.model) for engine in (trainer.g, trainer.d)}
    (out / f"{name}-rank-{trainer.info.rank}.json").write_text(
        json.dumps({"steps": counter.steps[:steps], "buffers": buffers}, indent=1))


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


if __name__ == "__main__":
    main()
