"""One model, its optimizer and its precision, behind the same small interface for DDP and DeepSpeed.

This is the only module that imports accelerate and deepspeed. The loop calls ``backward``,
``step``, ``frozen``, ``autocast`` and ``save``/``load``; which launch mode is running is decided
once, here, from the environment the launcher left (``accelerate launch`` with a DeepSpeed
config, ``torchrun``, or a plain process) and ``dist.deepspeed_config``.

Why Accelerate's multi-model DeepSpeed support and not ``deepspeed.initialize`` beside it: the
launcher already speaks Accelerate (``accelerate launch --config_file launch/cpu_zero2.yaml`` sets
the ZeRO stage through the environment), and Accelerate builds each engine from a plugin with the
same process group, device placement and dataloader-free setup as the DDP path. The generator's
Accelerator owns a plugin dict (``generator``, ``discriminator``); a second Accelerator, created
after ``select_deepspeed_plugin("discriminator")``, prepares the discriminator. After ``prepare``
we drive each ``DeepSpeedEngine`` directly (``engine.backward``/``engine.step``) because
Accelerate's ``backward`` also steps, which leaves no place to skip a non-finite update.

Precision:
- DDP path: we own autocast and one ``torch.amp.GradScaler`` per model (Accelerate keeps a single
  scaler, and on CPU silently ignores fp16), so a discriminator overflow never skips a generator
  step, and fp16 also runs on CPU.
- DeepSpeed path: each engine keeps its own dynamic loss scaler (fp16) or casts its model to bf16.
  DeepSpeed does not autocast, so inputs are cast to ``input_dtype`` by the caller.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distgan.config import Config, ConfigError, OptimizerConfig

_DTYPES = {"no": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class ProcessInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    is_main: bool
    deepspeed_stage: int | None  # None: DDP (or a single process without DeepSpeed)


@dataclass
class StepResult:
    grad_norm: float
    skipped: bool  # the optimizer did not update (non-finite gradients or an fp16 overflow)


def deepspeed_base_config(cfg: Config) -> dict[str, Any] | None:
    """The DeepSpeed config the launcher asked for, or None for the DDP path."""
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        from accelerate import DeepSpeedPlugin

        base = copy.deepcopy(DeepSpeedPlugin().deepspeed_config)
        # Those launcher fields now live in ``base``; left in the environment, Accelerate would
        # reject the per-model config dicts built from it as conflicting with the launch config.
        os.environ.pop("ACCELERATE_CONFIG_DS_FIELDS", None)
        return base
    if cfg.dist.deepspeed_config:
        path = Path(cfg.dist.deepspeed_config)
        if not path.is_file():
            raise ConfigError(f"dist.deepspeed_config: file not found: {path}")
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"dist.deepspeed_config: {path} is not valid JSON: {err}") from err
    return None


def fill_deepspeed_config(
    base: dict[str, Any], cfg: Config, optim: OptimizerConfig, world_size: int
) -> dict[str, Any]:
    """Fill ``auto`` (or absent) values from the distgan config; refuse explicit contradictions."""
    ds = copy.deepcopy(base)

    def fill(section: dict[str, Any], key: str, value: Any, name: str) -> None:
        current = section.get(key, "auto")
        if current == "auto" or current is None:
            section[key] = value
        elif current != value:
            raise ConfigError(
                f"DeepSpeed config sets {name}={current!r} but the distgan config implies {value!r}; "
                f"set it to \"auto\" in the DeepSpeed JSON or change the distgan config"
            )

    micro = cfg.data.batch_size
    accum = cfg.train.grad_accum
    fill(ds, "train_micro_batch_size_per_gpu", micro, "train_micro_batch_size_per_gpu")
    fill(ds, "gradient_accumulation_steps", accum, "gradient_accumulation_steps")
    fill(ds, "train_batch_size", micro * accum * world_size, "train_batch_size")
    fill(ds, "gradient_clipping", float(optim.grad_clip or 0.0), "gradient_clipping")
    precision = cfg.train.precision
    for kind in ("bf16", "fp16"):
        section = ds.setdefault(kind, {})
        fill(section, "enabled", precision == kind, f"{kind}.enabled")
    if precision == "fp16":
        ds["fp16"].setdefault("loss_scale", 0)  # dynamic
        ds["fp16"].setdefault("initial_scale_power", 16)
    zero = ds.setdefault("zero_optimization", {})
    stage = zero.get("stage", 0)
    if stage not in (1, 2, 3):
        raise ConfigError(
            f"DeepSpeed ZeRO stage {stage} is not supported for GAN training: with two engines, stage 0 "
            "fails in the generator step. Use stages 1-3, or launch without DeepSpeed for plain DDP."
        )
    if "optimizer" in ds:
        params = ds["optimizer"].setdefault("params", {})
        for key, value in (("lr", optim.lr), ("betas", list(optim.betas)), ("eps", optim.eps),
                           ("weight_decay", optim.weight_decay)):
            fill(params, key, value, f"optimizer.params.{key}")
    ds["zero_allow_untested_optimizer"] = True
    ds["steps_per_print"] = 2**31 - 1
    ds.pop("scheduler", None)  # the learning rate is set by distgan every step (see schedule.py)
    return ds


def _backend(cfg: Config) -> str:
    if cfg.dist.backend != "auto":
        return cfg.dist.backend
    return "nccl" if torch.cuda.is_available() else "gloo"


def _single_process_rendezvous() -> None:
    """DeepSpeed needs a process group even for one process; give it a local one."""
    if "WORLD_SIZE" in os.environ:
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))


def _make_optimizer(model: nn.Module, optim: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=optim.lr, betas=tuple(optim.betas), eps=optim.eps,
                             weight_decay=optim.weight_decay)


class ModelEngine:
    """A model under training: call ``module`` forward, then ``backward`` and ``step``.

    ``model`` is the plain ``nn.Module`` (its parameters may be ZeRO-3 partitions); ``module`` is
    what the forward pass should call (DDP wrapper or DeepSpeed engine).
    """

    def __init__(self, name: str, model: nn.Module, module: nn.Module, optimizer: Any,
                 optim: OptimizerConfig, precision: str, device: torch.device,
                 deepspeed_engine: Any | None = None, grad_accum: int = 1) -> None:
        self.name = name
        self.model = model
        self.module = module
        self.optimizer = optimizer
        self.grad_clip = optim.grad_clip
        self.precision = precision
        self.device = device
        self.deepspeed_engine = deepspeed_engine
        self.grad_accum = grad_accum
        self.scaler = (torch.amp.GradScaler(device.type, init_scale=2.0**16)
                       if precision == "fp16" and deepspeed_engine is None else None)
        self._last_grad_norm = 0.0

    # ----------------------------------------------------------------------------------------
    @property
    def input_dtype(self) -> torch.dtype:
        """Dtype the forward expects: DeepSpeed casts the model, DDP autocasts float32 inputs."""
        return _DTYPES[self.precision] if self.deepspeed_engine is not None else torch.float32

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.deepspeed_engine is not None or self.precision == "no":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_DTYPES[self.precision])

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """No gradients into this model while another model's loss flows through it.

        Needed for the generator's backward through D: under ZeRO-2/3 gradients into a model whose
        engine is not stepping crash, and under ZeRO-1 they would silently train D on G's loss.
        """
        flags = [p.requires_grad for p in self.model.parameters()]
        self.model.requires_grad_(False)
        try:
            yield
        finally:
            for p, flag in zip(self.model.parameters(), flags, strict=True):
                p.requires_grad_(flag)

    @contextlib.contextmanager
    def accumulating(self, last: bool) -> Iterator[None]:
        """Around a micro-batch's backward: skip the DDP all-reduce unless it is the last one."""
        if last or self.deepspeed_engine is not None or not hasattr(self.module, "no_sync"):
            yield
        else:
            with self.module.no_sync():
                yield

    def backward(self, loss: torch.Tensor) -> None:
        if self.deepspeed_engine is not None:
            self.deepspeed_engine.backward(loss)  # scales by 1/grad_accum itself
            return
        loss = loss / self.grad_accum
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self) -> StepResult:
        """Clip, update and zero the gradients; skip the update when gradients are not finite."""
        if self.deepspeed_engine is not None:
            engine = self.deepspeed_engine
            engine.step()
            norm = engine.get_global_grad_norm()
            norm = float(norm) if norm is not None else float("nan")
            skipped = bool(getattr(engine, "skipped_steps", 0) > getattr(self, "_ds_skipped", 0))
            self._ds_skipped = getattr(engine, "skipped_steps", 0)
            return StepResult(norm, skipped)
        params = [p for p in self.model.parameters() if p.grad is not None]
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        max_norm = self.grad_clip if self.grad_clip is not None else math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm)) if params else 0.0
        if self.scaler is not None:
            scale = self.scaler.get_scale()
            self.scaler.step(self.optimizer)  # skips by itself on inf/nan
            self.scaler.update()
            skipped = self.scaler.get_scale() < scale
        elif math.isfinite(norm):
            self.optimizer.step()
            skipped = False
        else:
            skipped = True
        self.optimizer.zero_grad(set_to_none=True)
        return StepResult(norm, skipped)

    def zero_grad(self) -> None:
        """Drop gradients without updating (an update skipped on every rank)."""
        if self.deepspeed_engine is not None:
            self.deepspeed_engine.zero_grad()
        else:
            self.optimizer.zero_grad(set_to_none=True)

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def loss_scale(self) -> float | None:
        if self.precision != "fp16":
            return None
        if self.deepspeed_engine is not None:
            return float(self.deepspeed_engine.optimizer.cur_scale)
        return float(self.scaler.get_scale())

    # ----------------------------------------------------------------------------------------
    def save(self, folder: Path, is_main: bool) -> None:
        """Write this model's training state into ``folder`` (every rank calls this)."""
        folder.mkdir(parents=True, exist_ok=True)
        if self.deepspeed_engine is not None:
            # Each engine in its own folder: two engines in one collide on "latest" and the tag.
            self.deepspeed_engine.save_checkpoint(str(folder), tag="zero", save_latest=False)
            return
        if is_main:
            state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                     "scaler": self.scaler.state_dict() if self.scaler is not None else None}
            torch.save(state, folder / "state.pt")

    def load(self, folder: Path) -> None:
        if self.deepspeed_engine is not None:
            path, _ = self.deepspeed_engine.load_checkpoint(
                str(folder), tag="zero", load_optimizer_states=True, load_lr_scheduler_states=False)
            if path is None:
                raise RuntimeError(f"DeepSpeed could not load the {self.name} checkpoint in {folder}")
            return
        # To host memory first: load_state_dict copies onto the model's device, and "cpu:0" (the
        # device Accelerate gives each CPU process of a multi-process run) is no map_location.
        state = torch.load(folder / "state.pt", map_location="cpu", weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    @contextlib.contextmanager
    def full_parameters(self) -> Iterator[nn.Module]:
        """The model with every parameter whole on every rank (gathers ZeRO-3 partitions)."""
        if self.deepspeed_engine is not None and self.deepspeed_engine.zero_optimization_stage() == 3:
            import deepspeed

            with deepspeed.zero.GatheredParameters(list(self.model.parameters()), modifier_rank=None):
                yield self.model
        else:
            yield self.model


def checkpoint_files_complete(folder: Path, world_size: int) -> str | None:
    """Why an engine folder is unusable for ``world_size`` ranks, or None when it is complete."""
    if (folder / "state.pt").is_file():
        return None
    zero = folder / "zero"
    if not zero.is_dir():
        return f"{folder} holds no model state"
    for rank in range(world_size):
        if not list(zero.glob(f"*zero_pp_rank_{rank}_*optim_states.pt")):
            return f"{zero} lacks the optimizer shard of rank {rank}"
    return None


def deepspeed_world_size(folder: Path) -> int | None:
    """How many ranks wrote a DeepSpeed engine folder (None for a DDP checkpoint)."""
    zero = folder / "zero"
    if not zero.is_dir():
        return None
    return len(list(zero.glob("*zero_pp_rank_*optim_states.pt")))


def build_engines(cfg: Config, generator: nn.Module, discriminator: nn.Module
                  ) -> tuple[ModelEngine, ModelEngine, ProcessInfo]:
    """Set up the process group and wrap both models for the launch mode in effect."""
    from accelerate import Accelerator, DeepSpeedPlugin
    from accelerate.utils import InitProcessGroupKwargs

    base = deepspeed_base_config(cfg)
    if base is not None:
        _single_process_rendezvous()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    # The backend must be named (gloo on CPU), or Accelerate + DeepSpeed on CPU reports world size
    # 1 and every rank as main; without a launcher there is no process group to configure.
    handlers = ([InitProcessGroupKwargs(backend=_backend(cfg), timeout=timedelta(minutes=cfg.dist.timeout_minutes))]
                if "WORLD_SIZE" in os.environ else [])
    precision = cfg.train.precision

    if base is None:
        # cpu=True: without it Accelerate treats several CPU processes as one (no DDP wrapping).
        accelerator = Accelerator(mixed_precision="no", cpu=not torch.cuda.is_available(),
                                  kwargs_handlers=handlers)
        device = accelerator.device
        engines = []
        for name, model, optim in (("generator", generator, cfg.optim.generator),
                                   ("discriminator", discriminator, cfg.optim.discriminator)):
            optimizer = _make_optimizer(model, optim)
            module = accelerator.prepare_model(model)
            engines.append(ModelEngine(name, model, module, optimizer, optim, precision, device,
                                       grad_accum=cfg.train.grad_accum))
        stage = None
    else:
        from accelerate.utils import DummyOptim

        plugins = {
            name: DeepSpeedPlugin(hf_ds_config=fill_deepspeed_config(base, cfg, optim, world_size))
            for name, optim in (("generator", cfg.optim.generator),
                                ("discriminator", cfg.optim.discriminator))
        }
        engines = []
        accelerator = None
        for name, model, optim in (("generator", generator, cfg.optim.generator),
                                   ("discriminator", discriminator, cfg.optim.discriminator)):
            if accelerator is None:
                accelerator = current = Accelerator(mixed_precision=precision, deepspeed_plugins=plugins,
                                                    kwargs_handlers=handlers)
            else:
                current = Accelerator(mixed_precision=precision, kwargs_handlers=handlers)
                current.state.select_deepspeed_plugin(name)
            if precision != "no":
                # ZeRO-3 casts partitioned parameters to bf16/fp16 but not buffers (spectral
                # norm's power-iteration vectors), whose forward then mixes dtypes.
                for buffer in model.buffers():
                    if buffer.is_floating_point():
                        buffer.data = buffer.data.to(_DTYPES[precision])
            if "optimizer" in plugins[name].deepspeed_config:
                optimizer = DummyOptim(model.parameters(), lr=optim.lr)
            else:
                optimizer = _make_optimizer(model, optim)
            module, _ = current.prepare(model, optimizer)
            ds_engine = current.deepspeed_engine_wrapped.engine
            engines.append(ModelEngine(name, model, module, ds_engine.optimizer, optim, precision,
                                       current.device, deepspeed_engine=ds_engine,
                                       grad_accum=cfg.train.grad_accum))
        stage = int(plugins["generator"].deepspeed_config["zero_optimization"]["stage"])
        device = accelerator.device

    info = ProcessInfo(rank=accelerator.process_index, world_size=accelerator.num_processes,
                       local_rank=accelerator.local_process_index, device=device,
                       is_main=accelerator.is_main_process, deepspeed_stage=stage)
    return engines[0], engines[1], info
