"""Bytes each rank hands to collectives per training step, per launch mode (``distgan bench step --traffic``).

Counted, not computed: ``CollectiveCounter`` wraps ``torch.distributed``'s collectives (in the
package and in ``distributed_c10d``, where the ``*_object`` helpers look them up) and adds up the
tensors each call is given while it is counting. It is installed before the engines are built,
because DeepSpeed keeps references to ``all_gather_into_tensor`` and ``reduce_scatter_tensor``
from its set-up. DDP's gradient all-reduce runs in C++ and calls no Python function; the counter
routes it through PyTorch's stock ``allreduce_hook`` (the same averaging all-reduce, one per
bucket), which calls ``torch.distributed.all_reduce``.

The sizes are payloads: an all-reduce's (or a reduce's) tensor, a reduce-scatter's whole input,
an all-gather's whole output, a broadcast's tensor. What goes over the wire depends on the algorithm; for a ring of
W ranks each rank sends 2 (W - 1) / W times an all-reduce's payload and (W - 1) / W times a
reduce-scatter's or all-gather's (docs/benchmarks.md turns these into step times).

Like ``distgan bench memory``, each mode runs one process group of two CPU ranks (``accelerate
launch`` with ``launch/cpu_*.yaml``) that builds the engines and ``GANStep`` as training does, makes
one unmeasured step, then counts ``steps`` steps.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from distgan.config import Config, load_config

# The argument holding each collective's payload, and the family it is reported under.
PAYLOADS = {
    "all_reduce": ("tensor", "all_reduce"),
    "reduce": ("tensor", "all_reduce"),
    "broadcast": ("tensor", "broadcast"),
    "reduce_scatter_tensor": ("input", "reduce_scatter"),
    "_reduce_scatter_base": ("input", "reduce_scatter"),
    "reduce_scatter": ("input_list", "reduce_scatter"),
    "all_gather_into_tensor": ("output_tensor", "all_gather"),
    "_all_gather_base": ("output_tensor", "all_gather"),
    "all_gather": ("tensor_list", "all_gather"),
    "all_to_all_single": ("input", "all_to_all"),
}
FAMILIES = ("all_reduce", "reduce_scatter", "all_gather", "broadcast", "all_to_all")


def _nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    return sum(_nbytes(v) for v in value) if isinstance(value, (list, tuple)) else 0


class CollectiveCounter:
    """Payload bytes and calls per collective family while ``counting`` is true."""

    def __init__(self) -> None:
        self.bytes: dict[str, int] = defaultdict(int)
        self.calls: dict[str, int] = defaultdict(int)
        self.counting = False
        self._saved: list[tuple[Any, str, Callable]] = []

    def _wrap(self, name: str, original: Callable) -> Callable:
        argument, family = PAYLOADS[name]
        signature = inspect.signature(original)

        @functools.wraps(original)
        def counted(*args: Any, **kwargs: Any) -> Any:
            if self.counting:
                bound = signature.bind_partial(*args, **kwargs).arguments
                self.bytes[family] += _nbytes(bound.get(argument))
                self.calls[family] += 1
            return original(*args, **kwargs)

        return counted

    def install(self) -> CollectiveCounter:
        from torch.distributed import distributed_c10d

        for name in PAYLOADS:
            original = getattr(distributed_c10d, name, None)
            if original is None:
                continue
            counted = self._wrap(name, original)
            for module in (dist, distributed_c10d):
                if getattr(module, name, None) is original:
                    self._saved.append((module, name, original))
                    setattr(module, name, counted)
        return self

    def uninstall(self) -> None:
        for module, name, original in reversed(self._saved):
            setattr(module, name, original)
        self._saved.clear()


def route_ddp_through_python(models: Iterable[torch.nn.Module]) -> None:
    """Give each DDP wrapper PyTorch's stock all-reduce hook, so its buckets reach the counter."""
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
    from torch.nn.parallel import DistributedDataParallel

    for model in models:
        if isinstance(model, DistributedDataParallel):
            model.register_comm_hook(None, allreduce_hook)


def rank_traffic(cfg: Config, steps: int) -> dict[str, Any]:
    """Collective payload bytes per step on this rank, over ``steps`` steps after a warm-up step."""
    from distgan.bench.memory import _trainer_parts

    counter = CollectiveCounter().install()
    g, d, info, step, wave = _trainer_parts(cfg)
    route_ddp_through_python(getattr(engine, "wrapped", None) for engine in (g, d))
    step([wave], 0)
    counter.counting = True
    for i in range(1, steps + 1):
        step([wave], i)
    counter.counting = False
    counter.uninstall()
    params = sum(p.numel() * p.element_size() for e in (g, d) for p in e.model.parameters())
    return {"rank": info.rank, "world_size": info.world_size, "stage": info.deepspeed_stage,
            "bytes": {k: v / steps for k, v in counter.bytes.items()},
            "calls": {k: v / steps for k, v in counter.calls.items()}, "param_bytes_here": params}


def measure_traffic(config: Path, overrides: list[str], modes: Iterable[str], out: Path, steps: int = 2,
                    timeout: float = 1800) -> dict[str, list[dict[str, Any]]]:
    """Per mode, each rank's ``rank_traffic`` from a two-rank CPU process group."""
    from distgan.bench.memory import per_mode_ranks

    return per_mode_ranks(modes, out, lambda folder: ["distgan.bench.traffic", str(folder), str(steps), str(config),
                                                      *overrides], timeout)


def traffic_table(modes: dict[str, list[dict[str, Any]]]) -> list[str]:
    """One row per mode and rank: MiB per step by collective family, and the number of calls."""
    mib = 2**20
    lines = [f"{'mode':<6}{'rank':>5}" + "".join(f"{f.replace('_', '-'):>15}" for f in FAMILIES)
             + f"{'total MiB':>11}{'calls':>7}"]
    for mode, ranks in modes.items():
        for rank in ranks:
            sent = [rank["bytes"].get(f, 0.0) / mib for f in FAMILIES]
            lines.append(f"{mode:<6}{rank['rank']:>5}" + "".join(f"{b:>15.2f}" for b in sent)
                         + f"{sum(sent):>11.2f}{sum(rank['calls'].values()):>7.0f}")
    return lines


def _worker(argv: list[str]) -> None:
    """``python -m distgan.bench.traffic OUT_DIR STEPS CONFIG [overrides]``, under a launcher."""
    out, steps, config, *overrides = argv
    result = rank_traffic(load_config(config, overrides), int(steps))
    (Path(out) / f"rank-{result['rank']}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    import os

    _worker(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # no interpreter finalization under gloo (see distgan/cli.py)
