"""The engine for one process and for DDP: PyTorch's AdamW, distgan's autocast and loss scaler.

Accelerate wraps the model in ``DistributedDataParallel`` when a launcher started several
processes (``cpu=True`` without CUDA, or it would treat several CPU processes as one). Mixed
precision is distgan's own: autocast in the forward, and for fp16 one ``GradScaler`` per model,
which works on CPU too. The state is one file, written by rank 0 (every rank holds it whole).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from distgan.checkpoint.files import load_file, save_file
from distgan.checkpoint.format import DDP_STATE
from distgan.config import Config, OptimizerConfig
from distgan.distributed import ProcessInfo
from distgan.train.engine import DTYPES, ModelEngine, StepResult, make_optimizer, process_group_kwargs


class DDPEngine(ModelEngine):
    def __init__(self, name: str, model: nn.Module, wrapped: nn.Module, optim: OptimizerConfig,
                 precision: str, device: torch.device, grad_accum: int, optimizer_impl: str = "auto") -> None:
        super().__init__(name, model, make_optimizer(model, optim, optimizer_impl), optim, precision, device)
        self.wrapped = wrapped  # DistributedDataParallel(model), or the model in one process
        self.grad_accum = grad_accum
        self.scaler = (torch.amp.GradScaler(device.type, init_scale=2.0**16) if precision == "fp16" else None)

    def _training_module(self) -> nn.Module:
        return self.wrapped

    @property
    def input_dtype(self) -> torch.dtype:
        return torch.float32

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=DTYPES[self.precision])

    def accumulating(self, last: bool) -> contextlib.AbstractContextManager:
        if last or not hasattr(self.wrapped, "no_sync"):
            return contextlib.nullcontext()
        return self.wrapped.no_sync()

    def backward(self, loss: torch.Tensor) -> None:
        loss = loss / self.grad_accum
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    @property
    def skips_on_device(self) -> bool:
        return bool(self.optimizer.defaults.get("fused"))

    def step(self) -> StepResult:
        params = [p for p in self.model.parameters() if p.grad is not None]
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        norm = self._gradient_norm(params) if params else torch.zeros((), device=self.device)
        # Under DDP the norm is of all-reduced gradients: every rank reaches the same verdict.
        skipped = ~torch.isfinite(norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)  # skips by itself on inf/nan (on device when fused)
            self.scaler.update()
        elif self.skips_on_device:
            # What GradScaler does for a fused optimizer: it skips the update on device when found_inf is 1.
            self.optimizer.found_inf = skipped.to(torch.float32)
            self.optimizer.step()
            del self.optimizer.found_inf
        elif not bool(skipped):  # a host synchronisation: only with a non-fused optimizer
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return StepResult(norm.detach(), skipped)

    def _gradient_norm(self, params: list[nn.Parameter]) -> torch.Tensor:
        """The total norm, clipped to ``grad_clip``. Without clipping only the norm (logged, and
        checked for finiteness): ``clip_grad_norm_`` with an infinite bound would still multiply
        every gradient by 1 (V1's G + D on 2 CPU threads: 0.12 s, against 0.02 s for the norm)."""
        if self.grad_clip is not None:
            return torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        return torch.nn.utils.get_total_norm([p.grad for p in params])

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def loss_scale(self) -> torch.Tensor | float | None:
        if self.scaler is None:
            return None
        # The scale tensor itself (get_scale() would read it on the host); a copy, as update() changes
        # it. Before this model's first backward there is none yet: the initial scale.
        scale = self.scaler._get_scale_async()
        return scale.clone() if scale is not None else self.scaler.get_scale()

    def save(self, folder: Path, is_main: bool) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if is_main:
            state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                     "scaler": self.scaler.state_dict() if self.scaler is not None else None}
            save_file(state, folder / DDP_STATE)

    def load(self, folder: Path, written_by: int) -> None:
        # Every rank saved the same replicated state (rank 0 wrote it): any world size loads it.
        # To host memory first: load_state_dict copies onto the model's device, and "cpu:0" (the
        # device Accelerate gives each CPU process of a multi-process run) is no map_location.
        state = load_file(folder / DDP_STATE)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    @contextlib.contextmanager
    def full_parameters(self) -> Iterator[nn.Module]:
        yield self.model


def build_ddp_engines(cfg: Config, generator: nn.Module, discriminator: nn.Module
                      ) -> tuple[DDPEngine, DDPEngine, ProcessInfo]:
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    # No buffer broadcast before each forward (DDP's default copies rank 0's buffers over every
    # rank's, one collective per wrapped forward). Wrapping already copied them once, and after
    # that they stay equal without it: spectral norm's u and v (HiFi-GAN's MSD) advance by a power
    # iteration that depends only on the weights and on u, the same on every rank; BigVGAN's
    # filters and CQT kernels are constants; BatchNorm's running estimates are the ranks' own
    # business (sync_batchnorm.py: under dist.batchnorm=local a broadcast would throw away the other
    # ranks' statistics). tests/train/test_step_syncs_ranks.py counts the step's collectives and
    # checks that the buffers still agree.
    handlers = [*process_group_kwargs(cfg), DistributedDataParallelKwargs(broadcast_buffers=False)]
    accelerator = Accelerator(mixed_precision="no", cpu=not torch.cuda.is_available(), kwargs_handlers=handlers)
    engines = [
        DDPEngine(name, model, accelerator.prepare_model(model), optim, cfg.train.precision, accelerator.device,
                  cfg.train.grad_accum, cfg.perf.optimizer_impl)
        for name, model, optim in (("generator", generator, cfg.optim.generator),
                                   ("discriminator", discriminator, cfg.optim.discriminator))
    ]
    info = ProcessInfo(rank=accelerator.process_index, world_size=accelerator.num_processes,
                       local_rank=accelerator.local_process_index, device=accelerator.device,
                       is_main=accelerator.is_main_process)
    return engines[0], engines[1], info
