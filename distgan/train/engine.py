"""One model, its optimizer and its precision, behind one small interface for DDP and DeepSpeed.

The loop sees only ``ModelEngine``: call the engine to run the training forward, ``frozen()``
for another model's loss to flow through this one, then ``backward`` and ``step``. There is one
implementation per backend, each in its own module, and they (with this builder) are the only
modules that import Accelerate and DeepSpeed:

- ``ddp_engine.DDPEngine``: one process, or DDP under ``torchrun`` / ``accelerate launch``;
- ``deepspeed_engine.DeepSpeedEngine``: DeepSpeed ZeRO-1/2/3 under ``accelerate launch`` with a
  DeepSpeed config, or ``dist.deepspeed_config`` under ``torchrun``.

``build_engines`` decides once, from the environment the launcher left and the config, which one
runs. Facts the design rests on (tests in ``tests/train/test_deepspeed.py`` and
``test_distributed.py``, ``test_step_syncs.py`` hold them to account):

- **Two engines, one per model.** A GAN alternates two optimizers over two models; each model
  gets its own engine and loss scaler, so a discriminator overflow never skips a generator step.
  Under DeepSpeed that means Accelerate's multi-model support: the generator's Accelerator owns
  ``deepspeed_plugins={"generator", "discriminator"}``, and a second Accelerator, created after
  ``select_deepspeed_plugin("discriminator")``, prepares the discriminator. Accelerate rather than
  ``deepspeed.initialize`` beside it, because the launcher already speaks Accelerate (the ZeRO
  stage arrives through the environment). After ``prepare`` each ``DeepSpeedEngine`` is driven
  directly (``backward``/``step``): Accelerate's ``backward`` also steps, which leaves no place to
  skip a non-finite update. ZeRO stage 0 is refused (it fails in the generator step).
- **D frozen for G's backward.** The generator's loss flows through the discriminator with D's
  parameters' ``requires_grad`` off and D called unwrapped (``frozen()`` yields the plain module):
  under ZeRO-2/3 gradients into an engine that is not stepping crash, under ZeRO-1 and DDP they
  would silently train D on G's loss, and DDP's hooks would expect an all-reduce.
- **gloo on CPU.** The process-group backend is named explicitly (gloo without CUDA);
  otherwise Accelerate with DeepSpeed on CPU reports world size 1 and every rank as main. CPU
  DDP also needs ``cpu=True``, or Accelerate treats several CPU processes as one.
- **bf16 without autocast under DeepSpeed.** DeepSpeed casts the model (ZeRO-3: not its buffers,
  which are cast here) and does not autocast, so the engine casts inputs to ``input_dtype``; the
  mel losses stay fp32. On the DDP path distgan owns autocast and one ``torch.amp.GradScaler`` per
  model (Accelerate keeps one scaler, and on CPU silently ignores fp16), so fp16 runs on CPU too.
- **One host read and one collective per step of distgan's own.** ``DDPEngine`` uses fused
  AdamW, which skips an update on the device when told ``found_inf`` (as ``GradScaler`` tells it),
  so a non-finite loss is not read before its backward but turns its gradients to NaN, which the
  gradient all-reduce carries to every rank; the step ends with one agreement (``skips.py``).
  DeepSpeed's step drops an update whose gradient norm is not finite by itself (0.19.8, fp32 and
  bf16; elsewhere, ``drops_non_finite_updates``, each loss is read and agreed before its backward). DDP's buffer broadcast before each forward is off (``ddp_engine``).
- **EMA codebooks are one codebook over the ranks.** A quantizer's EMA codebooks (EnCodec's RVQ,
  ``distgan.models.ema_quantize``) get an all-reduce statistics reducer when there are several
  ranks (``codebook_sync``): per quantizer layer and training step, one all-reduce inside the
  forward, beside the step's own collective; the buffers stay fp32 and bit-identical on every rank.
- **The model EMA averages what each rank holds** (``local_parameters``: the whole parameters, or
  ZeRO-3's partitions), so it needs no collective; ``ema.py`` says how each engine stores it.
- **No ``prepare`` of the shard loader.** The WebDataset stream splits by rank itself
  (``distgan.data.stream.plan``); ``accelerator.prepare`` would shard it a second time.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distgan.config import Config, OptimizerConfig
from distgan.distributed import ProcessInfo
from distgan.train.codebook_sync import attach_codebook_reducers
from distgan.train.sync_batchnorm import average_running_stats, convert_batchnorm, has_batchnorm

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

Forward = Callable[..., Any]


@dataclass
class StepResult:
    """Device tensors where the engine ``skips_on_device`` (read on the host, they would synchronise)."""

    grad_norm: torch.Tensor | float
    skipped: torch.Tensor | bool  # the optimizer did not update (non-finite gradients or an fp16 overflow)


class ModelEngine(ABC):
    """A model under training. ``engine(x)`` is the training forward (through the backend's
    wrapper, with autocast and the input dtype the backend needs)."""

    def __init__(self, name: str, model: nn.Module, optimizer: Any, optim: OptimizerConfig, precision: str,
                 device: torch.device) -> None:
        self.name = name
        self.model = model  # the plain module; under ZeRO-3 its parameters are partitions
        self.optimizer = optimizer
        self.grad_clip = optim.grad_clip
        self.precision = precision
        self.device = device
        # dist.batchnorm=local on several ranks: ranks average BatchNorm's running estimates after a step.
        self.averages_running_stats = False

    def __call__(self, *inputs: torch.Tensor) -> Any:
        return self._forward(self._training_module(), inputs)

    def _forward(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> Any:
        with self.autocast():
            # Only floating inputs take the model's dtype (a codec's codebook counts are integers).
            return module(*(x.to(self.input_dtype) if x.is_floating_point() else x for x in inputs))

    @contextlib.contextmanager
    def frozen(self) -> Iterator[Forward]:
        """A forward through the plain module with no gradient into this model's parameters,
        for another model's loss to flow through it (see the module docstring)."""
        flags = [p.requires_grad for p in self.model.parameters()]
        self.model.requires_grad_(False)
        try:
            yield lambda *inputs: self._forward(self.model, inputs)
        finally:
            for p, flag in zip(self.model.parameters(), flags, strict=True):
                p.requires_grad_(flag)

    def repeat_backward(self) -> None:
        """Before another gradient pass through the graph of a ``frozen`` forward (the loss
        balancer takes one per term): nothing to do here, but under ZeRO-3 (``deepspeed_engine``)."""
        return None

    def settle_running_stats(self) -> None:
        """Before a checkpoint: every rank takes the same BatchNorm running estimates (``sync_batchnorm``)."""
        if self.averages_running_stats:
            average_running_stats(self.model)

    def local_parameters(self) -> dict[str, torch.Tensor]:
        """What this rank holds of each parameter, by name: the whole parameter, or under ZeRO-3
        this rank's flat partition (``partition``). Views: after writing into them (``no_grad``),
        call ``local_parameters_changed``. The model EMA (``ema.py``) averages these."""
        return {name: p.detach() for name, p in self.model.named_parameters()}

    def partition(self) -> tuple[int, int] | None:
        """``(rank, ranks)`` when ``local_parameters`` are partitions: rank ``r`` holds elements
        ``[r * size, (r + 1) * size)`` of each flattened parameter, ``size = ceil(numel / ranks)``."""
        return None

    def parameter_shapes(self) -> dict[str, list[int]]:
        """Each parameter's whole shape, by name (also where this rank holds a partition)."""
        return {name: list(p.shape) for name, p in self.model.named_parameters()}

    def local_parameters_changed(self) -> None:
        """After writing into ``local_parameters``: make the forward see the new values."""
        return None  # they are the model's own parameters (ZeRO-3 gathers again: deepspeed_engine)

    @property
    def skips_on_device(self) -> bool:
        """Whether ``step`` skips an update for non-finite gradients without a host read (a fused
        optimizer told ``found_inf``): a non-finite loss can then go through backward, its NaN
        gradients doing the skipping, instead of being checked on the host first (``step.py``)."""
        return False

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    @abstractmethod
    def _training_module(self) -> nn.Module:
        """What the training forward calls (a DDP wrapper, a DeepSpeed engine, the model)."""

    @property
    @abstractmethod
    def input_dtype(self) -> torch.dtype:
        """Dtype the forward expects (DeepSpeed casts the model; DDP autocasts float32 inputs)."""

    @abstractmethod
    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of the forward (a null context where the backend casts)."""

    @abstractmethod
    def accumulating(self, last: bool) -> contextlib.AbstractContextManager:
        """Around a micro-batch's backward: skip gradient synchronisation unless ``last``."""

    @abstractmethod
    def backward(self, loss: torch.Tensor) -> None:
        """Backward of one micro-batch's loss (scaled by 1 / gradient accumulation)."""

    @abstractmethod
    def step(self) -> StepResult:
        """Clip, update and zero the gradients; skip the update when they are not finite."""

    @abstractmethod
    def zero_grad(self) -> None:
        """Drop gradients without updating (an update skipped on every rank)."""

    @abstractmethod
    def loss_scale(self) -> torch.Tensor | float | None:
        """The current fp16 loss scale, None without fp16."""

    @abstractmethod
    def save(self, folder: Path, is_main: bool) -> None:
        """Write this model's training state into ``folder`` (every rank calls this)."""

    @abstractmethod
    def load(self, folder: Path, written_by: int) -> None:
        """Restore what ``save`` wrote, on ``written_by`` ranks (this run may have another number)."""

    @abstractmethod
    def full_parameters(self) -> contextlib.AbstractContextManager[nn.Module]:
        """The plain model with every parameter whole on every rank (ZeRO-3 gathers them)."""


def make_optimizer(model: nn.Module, optim: OptimizerConfig, impl: str = "plain") -> torch.optim.Optimizer:
    """AdamW over ``model``'s parameters; ``impl`` is ``perf.optimizer_impl`` (``performance.py``)."""
    from distgan.train.performance import optimizer_kwargs

    device = next(model.parameters()).device
    return torch.optim.AdamW(model.parameters(), lr=optim.lr, betas=tuple(optim.betas), eps=optim.eps,
                             weight_decay=optim.weight_decay, **optimizer_kwargs(impl, device))


def launched_with_deepspeed() -> bool:
    """Whether ``accelerate launch`` was given a DeepSpeed config (it says so in the environment)."""
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"


def deepspeed_launch(cfg: Config) -> bool:
    """Whether this run trains under DeepSpeed: the launcher's config, or ``dist.deepspeed_config``."""
    return launched_with_deepspeed() or bool(cfg.dist.deepspeed_config)


def build_engines(cfg: Config, generator: nn.Module, discriminator: nn.Module
                  ) -> tuple[ModelEngine, ModelEngine, ProcessInfo]:
    """Set up the process group and wrap both models for the launch mode in effect (BatchNorm
    layers first made to span the ranks as ``dist.batchnorm`` says: ``sync_batchnorm``; EMA
    codebooks given an all-reduce: ``codebook_sync``; ``perf``'s backend flags set and, under DDP
    or one process, the models compiled: ``performance``)."""
    from distgan.train.deepspeed_engine import build_deepspeed_engines, deepspeed_base_config
    from distgan.train.performance import apply_backend_flags, compile_in_place

    apply_backend_flags(cfg.perf)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    generator, discriminator = (convert_batchnorm(m, cfg.dist.batchnorm, world_size, torch.cuda.is_available())
                                for m in (generator, discriminator))
    for model in (generator, discriminator):
        attach_codebook_reducers(model, world_size)
    base = deepspeed_base_config(cfg)
    if base is not None:
        g, d, info = build_deepspeed_engines(cfg, base, generator, discriminator)
    else:
        for model in (generator, discriminator):
            compile_in_place(model, cfg.perf)
        from distgan.train.ddp_engine import build_ddp_engines

        g, d, info = build_ddp_engines(cfg, generator, discriminator)
    for engine in (g, d):
        engine.averages_running_stats = (cfg.dist.batchnorm == "local" and info.world_size > 1
                                          and has_batchnorm(engine.model))
    return g, d, info


def process_group_kwargs(cfg: Config) -> list[Any]:
    """Accelerate's process-group settings: the backend named (gloo on CPU) and the timeout.
    Without a launcher (no ``WORLD_SIZE``) there is no process group to configure."""
    from datetime import timedelta

    from accelerate.utils import InitProcessGroupKwargs

    from distgan.distributed import default_backend

    if "WORLD_SIZE" not in os.environ:
        return []
    return [InitProcessGroupKwargs(backend=default_backend(cfg.dist.backend),
                                   timeout=timedelta(minutes=cfg.dist.timeout_minutes))]
