"""The ``perf`` switches: how fast a step runs, never what it computes (bar TF32's rounding).

Applied once, while the engines are built (``engine.build_engines``):

- ``cudnn_benchmark`` and ``tensorfloat`` (TF32) are process-wide backend flags. cuDNN autotuning pays off
  because a vocoder's training shapes never change (fixed segments, fixed batch); HiFi-GAN's
  train.py sets it for the same reason. TF32 rounds fp32 matmul/convolution inputs to a 10-bit
  mantissa on Ampere and later GPUs; PyTorch already allows it for cuDNN convolutions by default,
  the switch adds matmuls (and turns both off when false).
- ``optimizer_impl`` picks AdamW's kernel. ``auto`` is the fused kernel, on GPUs (one launch for
  all parameters) and on CPU: on 2 CPU threads the multi-tensor ``foreach`` path was no faster
  for HiFi-GAN V1's generator and slower for its 70M-parameter discriminators (memory-bound, it
  allocates whole-list intermediates), and the fused one was 3-6x faster than the per-parameter
  loop (G 1.6 s vs 4.7 s, D 1.3 s vs 7.5 s a step on a loaded machine). The fused kernel also
  skips an update on the device, which the one-host-read step rests on (``train/skips.py``);
  with ``foreach`` or ``plain`` every loss is read on the host before its backward instead.
- ``compile`` compiles each model in place (``nn.Module.compile``), before any wrapper, so the DDP
  wrapper's forward and the frozen, unwrapped D of the generator update both run the compiled
  module. Freezing D changes its parameters' ``requires_grad``, so D holds two graphs (training and
  frozen); both exist after the first step, and later steps reuse them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from distgan.config import ConfigError, PerfConfig


def apply_backend_flags(perf: PerfConfig) -> None:
    torch.backends.cudnn.benchmark = perf.cudnn_benchmark
    torch.backends.cudnn.allow_tf32 = perf.tensorfloat
    torch.backends.cuda.matmul.allow_tf32 = perf.tensorfloat


def optimizer_kwargs(impl: str, device: torch.device) -> dict[str, Any]:
    """AdamW's ``fused`` / ``foreach`` arguments for ``perf.optimizer_impl`` on ``device``."""
    if impl == "auto":
        impl = "fused" if device.type in ("cuda", "cpu") else "plain"
    if impl == "fused":
        if device.type not in ("cuda", "cpu"):
            raise ConfigError(f"perf.optimizer_impl: fused AdamW needs CUDA or CPU, not {device.type}")
        return {"fused": True}
    return {"foreach": impl == "foreach"}


def compile_in_place(model: nn.Module, perf: PerfConfig) -> None:
    """``torch.compile`` ``model``'s forward in place when ``perf.compile`` is on."""
    if perf.compile:
        model.compile(backend=perf.compile_backend)
