"""A run's checkpoint in its family's release format (``distgan export --format hifigan|bigvgan|vocos|dac|encodec``).

``out`` is a folder of the format's files; a format that is one file (DAC's ``.pth``: its
``file_suffix``) is written to ``out`` itself when ``out`` ends in that suffix. A format without a
``config_file`` keeps its hyperparameters inside the generator file.

The generator keeps its weight norm, as the original releases do (their inference code removes it
after loading), stored as the hook-based norm's ``weight_g`` / ``weight_v``
(``distgan.models.reference_weights.reference_state_dict``); ZeRO partitions are consolidated.

With ``discriminator`` the second file holds the discriminators, both optimizers, ``steps`` and
``epoch``. The original ``train.py`` loads ``optim_g`` and ``optim_d`` whenever it finds that file, so
they are always there: with ``optimizer``, AdamW's moments from the checkpoint, re-indexed into the
reference's parameter order (its D optimizer chains the second set's parameters before MPD's; see
``release_formats.discriminator_keys``); without, a fresh AdamW (no moments) at the configured
learning rate. Either way each parameter group carries ``initial_lr``, which the reference's
``ExponentialLR`` needs when it resumes. Only a checkpoint written by one process or DDP holds its
optimizer state whole; ZeRO partitions it over the ranks, and ``optimizer`` is refused there.

``steps`` follows the reference's convention, the 0-based index of the last step taken (distgan's
step count minus one), so that a resumed reference run continues with the next step; the file names
carry distgan's step count. ``epoch`` is the epoch the run was in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distgan.checkpoint.format import ENGINES, Checkpoint, resolve_checkpoint
from distgan.checkpoint.weights import (
    checkpoint_config,
    ddp_engine_state,
    engine_state_dict,
    generator_state_dict,
)
from distgan.config import Config, OptimizerConfig
from distgan.families import build_models, release_format, release_format_names
from distgan.inference.release_formats import (
    discriminator_keys,
    discriminator_problems,
    generator_problem,
    release_files,
)
from distgan.models.reference_weights import reference_state_dict

CONFIG_FILE = "config.json"
Named = list[tuple[str, nn.Parameter]]


def _check(fmt: str, cfg: Config, checkpoint: Checkpoint, discriminator: bool, optimizer: bool) -> None:
    """Refuse what the format cannot hold before any weights are read."""
    if fmt not in release_format_names():
        raise ValueError(f"unknown release format {fmt!r} (one of {', '.join(release_format_names())})")
    problem = generator_problem(fmt, cfg)
    if problem:
        raise ValueError(f"{checkpoint.path}: cannot write the generator in {fmt}'s format: {problem}")
    problems = discriminator_problems(fmt, cfg.model.discriminator) if discriminator else []
    if problems:
        raise ValueError(f"{checkpoint.path}: cannot write the discriminators in {fmt}'s format: "
                         + "; ".join(problems) + " (export without --discriminator for the generator alone)")
    if optimizer and ddp_engine_state(checkpoint, ENGINES[0]) is None:
        stage = checkpoint.meta.get("deepspeed_stage")
        raise ValueError(f"{checkpoint.path}: --optimizer needs a checkpoint written by one process or DDP; "
                         f"DeepSpeed ZeRO-{stage} partitioned this one's optimizer state over its ranks "
                         "(export without --optimizer: the weights are consolidated, the optimizers start fresh)")


def reference_optimizer(parameters: Named, optim: OptimizerConfig, saved: dict[str, Any] | None = None,
                        our_order: list[str] | None = None) -> dict[str, Any]:
    """An AdamW state dict over ``parameters`` (named, in the reference's order): fresh, or with the
    per-parameter state of ``saved``, distgan's optimizer state dict over the parameters named
    ``our_order`` (its index order)."""
    fresh = torch.optim.AdamW([p for _, p in parameters], lr=optim.lr, betas=tuple(optim.betas), eps=optim.eps,
                              weight_decay=optim.weight_decay).state_dict()
    group = fresh["param_groups"][0]
    if saved is not None and our_order is not None:
        if len(saved["param_groups"]) != 1 or len(saved["param_groups"][0]["params"]) != len(parameters):
            raise ValueError(f"the saved optimizer's groups do not cover the model's {len(parameters)} parameters")
        group.update({key: value for key, value in saved["param_groups"][0].items() if key != "params"})
        index = {name: i for i, name in enumerate(our_order)}
        for position, (name, param) in enumerate(parameters):
            state = saved["state"].get(index[name])
            if state is None:
                continue
            if state["exp_avg"].shape != param.shape:
                raise ValueError(f"optimizer state of {name} has shape {tuple(state['exp_avg'].shape)}, "
                                 f"the parameter {tuple(param.shape)}")
            fresh["state"][position] = state
    group["initial_lr"] = optim.lr
    return fresh


def _discriminator_file(fmt: str, cfg: Config, checkpoint: Checkpoint, generator: nn.Module,
                        discriminators: nn.Module, optimizer: bool) -> dict[str, Any]:
    discriminators.load_state_dict(engine_state_dict(checkpoint, ENGINES[1]))
    keys = discriminator_keys(fmt, cfg.model.discriminator)
    content: dict[str, Any] = {key: reference_state_dict(getattr(discriminators, kind)) for kind, key in keys}
    d_named = [(f"{kind}.{name}", p) for kind, _ in keys
               for name, p in getattr(discriminators, kind).named_parameters()]
    saved_g, saved_d = ((ddp_engine_state(checkpoint, engine)["optimizer"] for engine in ENGINES) if optimizer
                        else (None, None))
    content["optim_g"] = reference_optimizer(list(generator.named_parameters()), cfg.optim.generator, saved_g,
                                             [name for name, _ in generator.named_parameters()])
    content["optim_d"] = reference_optimizer(d_named, cfg.optim.discriminator, saved_d,
                                             [name for name, _ in discriminators.named_parameters()])
    content["steps"] = checkpoint.step - 1
    content["epoch"] = int(checkpoint.trainer_state()["state"]["epoch"])
    return content


def export_release(source: str | Path, out: str | Path, fmt: str, discriminator: bool = False,
                   optimizer: bool = False, report: Callable[[str], Any] = print, ema: bool = False) -> list[Path]:
    """Write ``source``'s newest complete checkpoint (or that checkpoint) into the folder ``out`` in
    ``fmt``'s release format; returns the files written. ``optimizer`` implies ``discriminator``;
    ``ema``: the generator file holds the run's average of its weights (``train.ema_decay``)."""
    checkpoint = resolve_checkpoint(source)
    cfg = checkpoint_config(checkpoint)
    discriminator = discriminator or optimizer
    _check(fmt, cfg, checkpoint, discriminator, optimizer)
    generator, discriminators = build_models(cfg)
    generator.load_state_dict(generator_state_dict(checkpoint, ema))
    out = Path(out)
    release = release_format(fmt)[1]
    g_name, do_name = release_files(fmt, checkpoint.step)
    g_path = out if out.suffix and out.suffix == getattr(release, "file_suffix", None) else out / g_name
    g_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(release.generator_file(reference_state_dict(generator), cfg), g_path)
    written = [g_path]
    if discriminator:
        torch.save(_discriminator_file(fmt, cfg, checkpoint, generator, discriminators, optimizer), out / do_name)
        written.append(out / do_name)
        if not optimizer:
            report(f"{do_name}: optim_g and optim_d are fresh AdamW states (pass --optimizer for the run's)")
    if release.config_file is None:
        return written
    (out / release.config_file).write_text(release.config_text(cfg, checkpoint.world_size))
    return [*written, out / release.config_file]
