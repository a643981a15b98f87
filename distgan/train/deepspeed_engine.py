"""The engine for DeepSpeed ZeRO-1/2/3, and the DeepSpeed config it is built from.

The JSON the launcher names (``accelerate launch`` with a DeepSpeed config, or
``dist.deepspeed_config`` under ``torchrun``) is the base; every ``"auto"`` in it is filled from
the distgan config per model (``fill_deepspeed_config``) and an explicit contradiction is an
error. Each model gets its own engine (see ``engine.py`` for why, and how they are wired).
DeepSpeed writes each engine's partitioned state per rank under the ``zero`` tag.

A different number of ranks resumes through DeepSpeed's universal checkpoint: rank 0 converts the
engine's ``zero/`` with ``ds_to_universal`` once (into ``universal/`` beside it, kept for the next
time), every rank then loads it with DeepSpeed's ``load_universal`` switched on for that one load.
Weights, Adam moments and step counts come back exactly; the trainer's weight fingerprint check
confirms the weights.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distgan.checkpoint.files import deepspeed_records, load_file, weights_only_loads
from distgan.checkpoint.format import UNIVERSAL, ZERO_TAG
from distgan.config import Config, ConfigError, OptimizerConfig
from distgan.distributed import ProcessInfo, broadcast_object
from distgan.train.build_lock import check_build_locks
from distgan.train.engine import (
    DTYPES,
    Forward,
    ModelEngine,
    StepResult,
    launched_with_deepspeed,
    make_optimizer,
    process_group_kwargs,
)

# The DeepSpeed whose source ``drops_non_finite_updates`` was read in; older ones take the host path.
DROPS_NON_FINITE_SINCE = "0.19.8"


def drops_non_finite_updates(engine: Any) -> bool:
    """Whether DeepSpeed's own ``step`` drops an update whose gradient norm is not finite, on every
    rank (the norm is all-reduced first): as read in its 0.19.8 source, ZeRO-1/2
    (``DeepSpeedZeroOptimizer.step``) counts a non-finite norm as an overflow except in bf16 with
    ``bf16.check_grad_overflow`` false; ZeRO-3 (``DeepSpeedZeroOptimizer_Stage3.step``) and ZeRO-1's
    bf16 optimizer always do. Either way only where it computes the norm
    (``zero_optimization.compute_grad_norm``, on by default). Not with fp16 either: there a NaN
    loss would count as an overflow to DeepSpeed's dynamic loss scaler, which ends the run when the
    scale reaches its minimum (about 18 overflows from 2^16), before ``faults.max_consecutive_skips``
    (20) rolls back. An older DeepSpeed is not assumed to (its source was not read for this). Where
    this is False distgan checks the losses on the host before each backward (``skips.py``)."""
    import deepspeed
    from packaging.version import Version

    if Version(deepspeed.__version__).release < Version(DROPS_NON_FINITE_SINCE).release or engine.fp16_enabled():
        return False
    config = engine._config
    return bool(config.zero_config.compute_grad_norm
                and (not engine.bfloat16_enabled() or config.bfloat16_config.check_grad_overflow))


class DeepSpeedEngine(ModelEngine):
    def __init__(self, name: str, model: nn.Module, engine: Any, optim: OptimizerConfig, precision: str,
                 device: torch.device) -> None:
        super().__init__(name, model, engine.optimizer, optim, precision, device)
        self.engine = engine  # deepspeed.DeepSpeedEngine: forward, backward (scaled), step, save
        self.skipped_steps = engine.skipped_steps  # DeepSpeed's count of skipped updates so far
        self._drops_non_finite = drops_non_finite_updates(engine)

    def _training_module(self) -> nn.Module:
        return self.engine

    @property
    def input_dtype(self) -> torch.dtype:
        return DTYPES[self.precision]

    def autocast(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def accumulating(self, last: bool) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()  # DeepSpeed counts micro-batches itself

    def backward(self, loss: torch.Tensor) -> None:
        self.engine.backward(loss)  # scales by 1/gradient_accumulation_steps itself

    @property
    def skips_on_device(self) -> bool:
        """A non-finite loss may go through backward: its NaN gradients make DeepSpeed drop the
        update on every rank (``drops_non_finite_updates``)."""
        return self._drops_non_finite

    def step(self) -> StepResult:
        self.engine.step()
        norm = self.engine.get_global_grad_norm()  # a device tensor, or a float (inf) after a skip
        skipped = self.engine.skipped_steps > self.skipped_steps  # DeepSpeed's host count: no read
        self.skipped_steps = self.engine.skipped_steps
        if norm is None:
            norm = float("nan")
        return StepResult(norm.detach() if torch.is_tensor(norm) else float(norm), skipped)

    def zero_grad(self) -> None:
        self.engine.zero_grad()

    def loss_scale(self) -> float | None:
        return float(self.engine.optimizer.cur_scale) if self.precision == "fp16" else None

    def save(self, folder: Path, is_main: bool) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        # Each engine in its own folder: two engines in one collide on "latest" and the tag.
        self.engine.save_checkpoint(str(folder), tag=ZERO_TAG, save_latest=False)

    def load(self, folder: Path, written_by: int) -> None:
        universal = written_by != self.engine.world_size
        load_dir = universal_checkpoint(folder, self.engine.global_rank == 0) if universal else folder
        config = self.engine._config  # read by load_checkpoint and the ZeRO optimizer's loading
        # DeepSpeed unpickles with weights_only=False; distgan holds it to weights only.
        try:
            config.load_universal_checkpoint = universal
            with weights_only_loads(deepspeed_records()):
                path, _ = self.engine.load_checkpoint(str(load_dir), tag=ZERO_TAG, load_optimizer_states=True,
                                                      load_lr_scheduler_states=False)
        finally:
            config.load_universal_checkpoint = False
        if path is None:
            raise RuntimeError(f"DeepSpeed could not load the {self.name} checkpoint in {folder}")
        if universal:
            self._restore_buffers(folder)
        self.skipped_steps = self.engine.skipped_steps

    def _restore_buffers(self, folder: Path) -> None:
        """A universal checkpoint holds parameters and optimizer state only: the buffers (spectral
        norm's power-iteration vectors) come from the module state every rank saved whole."""
        states = sorted((folder / ZERO_TAG).glob("*model_states.pt"))[0]
        module = load_file(states, deepspeed_records())["module"]
        with torch.no_grad():
            for name, buffer in self.model.named_buffers():
                if name in module:
                    buffer.copy_(module[name])

    def _zero3(self) -> bool:
        return self.engine.zero_optimization_stage() == 3

    def local_parameters(self) -> dict[str, torch.Tensor]:
        """ZeRO-3: each parameter's partition on this rank (``ds_tensor``, flat, in the run's dtype)."""
        if not self._zero3():
            return super().local_parameters()
        return {name: p.ds_tensor.detach() for name, p in self.model.named_parameters()}

    def partition(self) -> tuple[int, int] | None:
        return (self.engine.global_rank, self.engine.world_size) if self._zero3() else None

    def parameter_shapes(self) -> dict[str, list[int]]:
        if not self._zero3():
            return super().parameter_shapes()
        return {name: list(p.ds_shape) for name, p in self.model.named_parameters()}

    def local_parameters_changed(self) -> None:
        """ZeRO-3: what its optimizer's ``step`` does around an update of the partitions (0.19.8's
        ``DeepSpeedZeroOptimizer_Stage3``): release every gathered parameter, gather the persistent
        ones (small parameters it keeps whole on every rank, ``param_persistence_threshold``) again
        from the new partitions, and drop ZeRO++'s secondary copies. Without it the persistent
        parameters would keep their old values. Every rank calls it (the gather is a collective)."""
        if not self._zero3():
            return
        optimizer = self.engine.optimizer
        optimizer._partition_all_parameters()
        if optimizer.persistent_parameters:
            optimizer.persistent_parameters[0].all_gather(optimizer.persistent_parameters)
        optimizer.invalidate_secondary_tensor()

    @contextlib.contextmanager
    def frozen(self) -> Iterator[Forward]:
        """Under ZeRO-3, each frozen forward also notes how many input gradients each module's
        backward waits for before it releases its gathered parameters (``repeat_backward``)."""
        with super().frozen() as forward:
            if self.engine.zero_optimization_stage() != 3:
                yield forward
                return

            def noting(*inputs):
                output = forward(*inputs)
                self._awaited = {m: m.ds_grads_remaining for m in self.model.modules() if hasattr(m, "ds_grads_remaining")}
                return output

            yield noting

    def repeat_backward(self) -> None:
        """ZeRO-3 (0.19.8, ``parameter_offload``) counts down, per module, the input gradients its
        backward has produced since the forward and releases the gathered parameters at zero; a
        second pass through the same graph would count below zero and never release them. So
        the counts of the last frozen forward are set again before each pass."""
        for module, awaited in getattr(self, "_awaited", {}).items():
            module.ds_grads_remaining = awaited

    @contextlib.contextmanager
    def full_parameters(self) -> Iterator[nn.Module]:
        if self.engine.zero_optimization_stage() != 3:
            yield self.model
            return
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(self.model.parameters()), modifier_rank=None):
            yield self.model


def universal_checkpoint(folder: Path, converts: bool) -> Path:
    """``folder/universal``, DeepSpeed's world-size-free form of ``folder/zero``; the rank that
    ``converts`` makes it when it is not there yet while the others wait for its verdict."""
    target = folder / UNIVERSAL
    problem = None
    if converts and not target.is_dir():
        from deepspeed.checkpoint import ds_to_universal

        staging = folder / f".{UNIVERSAL}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        args = argparse.Namespace(input_folder=str(folder / ZERO_TAG), output_folder=str(staging / ZERO_TAG),
                                  num_extract_workers=1, num_merge_workers=1, keep_temp_folder=False,
                                  strict=True, inject_missing_state=True)
        print(f"[distgan] converting {folder / ZERO_TAG} to a universal checkpoint for another world size",
              flush=True)
        try:  # DeepSpeed's progress goes to a log beside it
            with open(staging / "conversion.log", "w") as log, contextlib.redirect_stdout(log), \
                    contextlib.redirect_stderr(log), weights_only_loads(deepspeed_records()):
                ds_to_universal.main(args)
            staging.rename(target)
        except Exception as err:  # any failure inside DeepSpeed's converter: every rank must hear of it
            problem = f"converting {folder / ZERO_TAG} to a universal checkpoint failed: {type(err).__name__}: {err}"
    problem = broadcast_object(problem)
    if problem:
        raise RuntimeError(problem)
    return target


def deepspeed_base_config(cfg: Config) -> dict[str, Any] | None:
    """The DeepSpeed config the launcher asked for, or None for the DDP path."""
    if launched_with_deepspeed():
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


def _fill(section: dict[str, Any], key: str, value: Any, name: str) -> None:
    """Set an ``auto`` (or absent) value; refuse an explicit one that contradicts ``value``."""
    current = section.get(key, "auto")
    if current == "auto" or current is None:
        section[key] = value
    elif current != value:
        raise ConfigError(
            f"DeepSpeed config sets {name}={current!r} but the distgan config implies {value!r}; "
            f"set it to \"auto\" in the DeepSpeed JSON or change the distgan config"
        )


def fill_deepspeed_config(base: dict[str, Any], cfg: Config, optim: OptimizerConfig, world_size: int
                          ) -> dict[str, Any]:
    """One model's DeepSpeed config: ``base`` with every ``auto`` filled from the distgan config."""
    ds = copy.deepcopy(base)
    micro, accum = cfg.data.batch_size, cfg.train.grad_accum
    _fill(ds, "train_micro_batch_size_per_gpu", micro, "train_micro_batch_size_per_gpu")
    _fill(ds, "gradient_accumulation_steps", accum, "gradient_accumulation_steps")
    _fill(ds, "train_batch_size", micro * accum * world_size, "train_batch_size")
    _fill(ds, "gradient_clipping", float(optim.grad_clip or 0.0), "gradient_clipping")
    for kind in ("bf16", "fp16"):
        _fill(ds.setdefault(kind, {}), "enabled", cfg.train.precision == kind, f"{kind}.enabled")
    if cfg.train.precision == "fp16":
        ds["fp16"].setdefault("loss_scale", 0)  # dynamic
        ds["fp16"].setdefault("initial_scale_power", 16)
    stage = ds.setdefault("zero_optimization", {}).get("stage", 0)
    if stage not in (1, 2, 3):
        raise ConfigError(
            f"DeepSpeed ZeRO stage {stage} is not supported for GAN training: with two engines, stage 0 "
            "fails in the generator step. Use stages 1-3, or launch without DeepSpeed for plain DDP."
        )
    if "optimizer" in ds:
        params = ds["optimizer"].setdefault("params", {})
        for key, value in (("lr", optim.lr), ("betas", list(optim.betas)), ("eps", optim.eps),
                           ("weight_decay", optim.weight_decay)):
            _fill(params, key, value, f"optimizer.params.{key}")
    ds["zero_allow_untested_optimizer"] = True
    ds["steps_per_print"] = 2**31 - 1
    ds.pop("scheduler", None)  # the learning rate is set by distgan every step (see schedule.py)
    return ds


def _single_process_rendezvous() -> None:
    """DeepSpeed needs a process group even for one process; give it a local one."""
    if "WORLD_SIZE" in os.environ:
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))


def _skip_shared_memory_op() -> None:
    """On CPU, DeepSpeed's communication backend compiles a C++ op (``deepspeed_shm_comm``) on
    first use: minutes of compiling, a dozen lines of warnings, and a build lock in
    ~/.cache/torch_extensions that a process killed during the build leaves behind, on which every
    later run waits forever. The op only speeds up DeepSpeed's inference all-reduce; training's
    collectives go through torch.distributed (gloo). Marking it incompatible makes DeepSpeed skip
    the build."""
    if torch.cuda.is_available():
        return
    os.environ.setdefault("DS_ACCELERATOR", "cpu")  # said, not guessed: no "Setting accelerator" warning
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


def cast_buffers(model: nn.Module, dtype: torch.dtype) -> None:
    """Floating buffers to the run's ``dtype``: ZeRO-3 casts partitioned parameters to bf16/fp16 but
    not buffers (spectral norm's power-iteration vectors), whose forward then mixes dtypes. A module
    with ``keeps_fp32_buffers`` (EMA codebooks: statistics that bf16 would round away) is left alone."""
    for module in model.modules():
        if getattr(module, "keeps_fp32_buffers", False):
            continue
        for buffer in module.buffers(recurse=False):
            if buffer.is_floating_point():
                buffer.data = buffer.data.to(dtype)


def build_deepspeed_engines(cfg: Config, base: dict[str, Any], generator: nn.Module, discriminator: nn.Module
                            ) -> tuple[DeepSpeedEngine, DeepSpeedEngine, ProcessInfo]:
    from accelerate import Accelerator, DeepSpeedPlugin
    from accelerate.utils import DummyOptim

    _single_process_rendezvous()
    _skip_shared_memory_op()
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:  # one report per machine
        check_build_locks()
    world_size = int(os.environ["WORLD_SIZE"])
    precision = cfg.train.precision
    mixed_precision = "no" if precision == "fp32" else precision
    models = {"generator": (generator, cfg.optim.generator), "discriminator": (discriminator, cfg.optim.discriminator)}
    plugins = {name: DeepSpeedPlugin(hf_ds_config=fill_deepspeed_config(base, cfg, optim, world_size))
               for name, (_, optim) in models.items()}
    accelerators = [Accelerator(mixed_precision=mixed_precision, deepspeed_plugins=plugins,
                                kwargs_handlers=process_group_kwargs(cfg))]
    engines = []
    for name, (model, optim) in models.items():
        if name != "generator":
            accelerators.append(Accelerator(mixed_precision=mixed_precision, kwargs_handlers=process_group_kwargs(cfg)))
            accelerators[-1].state.select_deepspeed_plugin(name)
        if precision != "fp32":
            cast_buffers(model, DTYPES[precision])
        optimizer = (DummyOptim(model.parameters(), lr=optim.lr) if "optimizer" in plugins[name].deepspeed_config
                     else make_optimizer(model, optim, cfg.perf.optimizer_impl))
        accelerators[-1].prepare(model, optimizer)
        engines.append(DeepSpeedEngine(name, model, accelerators[-1].deepspeed_engine_wrapped.engine, optim,
                                       precision, accelerators[-1].device))
    main = accelerators[0]
    info = ProcessInfo(rank=main.process_index, world_size=main.num_processes, local_rank=main.local_process_index,
                       device=main.device, is_main=main.is_main_process,
                       deepspeed_stage=int(plugins["generator"].deepspeed_config["zero_optimization"]["stage"]))
    return engines[0], engines[1], info
