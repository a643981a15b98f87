"""Where one training step's time goes, per side of ``bench step --baseline reference --profile``.

A ratio against the original code says how much faster distgan's step is, not why, nor how much
faster it could be. This profiles one more step of each side (after the timed rounds, so both are
warm) and answers both on CPU:

- the share of the step's operator time per class: convolutions (forward and backward kernels),
  matrix multiplies, weight normalisation, the rest; and the slowest operators;
- the convolutions' arithmetic rate: their FLOPs (``torch.utils.flop_counter``, forward and
  backward, counted in a separate step: the counter's dispatch would slow the profiled one) over
  their kernels' time, beside the rate of one large fp32 matrix multiply on the same threads
  (what the machine's BLAS reaches). Where convolutions are most of both steps and already run near
  that rate, equal arithmetic cannot be made much faster by anything around it.

CPU only: on a GPU the operators' host time measures launches, not kernels.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

CLASSES = {
    "convolution": ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::_slow_conv2d_forward",
                    "aten::_slow_conv2d_backward", "aten::slow_conv_dilated2d", "aten::slow_conv_transpose2d",
                    "aten::_nnpack_spatial_convolution", "aten::mkldnn_convolution_backward"),
    "matrix multiply": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"),
    "weight norm": ("aten::_weight_norm_interface", "aten::_weight_norm_interface_backward"),
}
CONVOLUTION_OPS = ("convolution", "convolution_backward")  # flop_counter's names (aten overloads)


@dataclass
class OpProfile:
    total_ms: float  # the operators' self time, summed (one thread's worth per thread busy)
    shares: dict[str, float]  # class -> fraction of total_ms; "other" completes it to 1
    conv_gflop: float  # forward and backward convolution FLOPs of one step, 1e9
    top: list[tuple[str, float]] = field(default_factory=list)  # (operator, ms), slowest first

    @property
    def conv_rate(self) -> float:
        """GFLOP/s of the convolution kernels (0 where the step has none)."""
        seconds = self.shares["convolution"] * self.total_ms / 1e3
        return self.conv_gflop / seconds if seconds > 0 else 0.0


def profile_step(run: Callable[[int], object], index: int, top: int = 6) -> OpProfile:
    """``run(index)`` once under ``torch.profiler`` and once under the FLOP counter."""
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.flop_counter import FlopCounterMode

    with profile(activities=[ProfilerActivity.CPU], acc_events=True) as prof:
        run(index)
    by_op = {e.key: e.self_cpu_time_total / 1e3 for e in prof.key_averages()}
    total = sum(by_op.values())
    shares = {name: sum(by_op.get(op, 0.0) for op in ops) / total for name, ops in CLASSES.items()}
    shares["other"] = 1.0 - sum(shares.values())
    counter = FlopCounterMode(display=False)
    with counter:
        run(index + 1)
    flops = sum(count for op, count in counter.get_flop_counts().get("Global", {}).items()
                if getattr(op, "__name__", str(op)).split(".")[0] in CONVOLUTION_OPS)
    slowest = sorted(by_op.items(), key=lambda item: -item[1])[:top]
    return OpProfile(total_ms=total, shares=shares, conv_gflop=flops / 1e9, top=slowest)


def matmul_rate(size: int = 2048, repeats: int = 3) -> float:
    """GFLOP/s of a ``size``-cubed fp32 matrix multiply on this process's CPU threads (best of ``repeats``)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9
