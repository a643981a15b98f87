"""Adam moments for a fine-tuning run (``train.init_optimizers``), from distgan or the original code.

A PyTorch optimizer's state dict knows parameters by position only. distgan's own (a DDP
checkpoint's ``optimizer``) lists them in the module's order, which the strict weight load has
just shown to be this module's. The original code's do_ files list the generator's parameters in
its module's order and the discriminator's as ``itertools.chain(msd or mrd, mpd)`` (both
trainers build ``optim_d`` that way); the order is recovered from the reference state dict, whose
parameter entries come in ``named_parameters`` order (buffers sit after each module's
parameters), mapped onto distgan's names by ``distgan.models.reference_weights``.

Only the per-parameter state (step count, moments) comes over: learning rate, betas, eps and
weight decay stay the config's. ZeRO engines are refused before anything loads (``init_from``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from distgan.config import ConfigError
from distgan.distributed import ProcessInfo
from distgan.models.reference_weights import map_reference_state_dict
from distgan.train.engine import ModelEngine


def _reference_order(module: nn.Module, state: dict[str, torch.Tensor], prefix: str) -> list[str]:
    """distgan's names of ``module``'s parameters, in the order of the reference's ``state``.

    Each reference entry is tagged with its position and mapped like the weights; a distgan
    parameter then carries the position of the reference entry it came from.
    """
    tags = {key: torch.full((1, 1), float(i)) for i, key in enumerate(state)}
    renames = getattr(type(module), "REFERENCE_RENAMES", ())
    mapped = map_reference_state_dict(tags, module.state_dict().keys(), renames)
    params = {name for name, _ in module.named_parameters()}
    positions = sorted((float(value.flatten()[0]), name) for name, value in mapped.items() if name in params)
    if len({pos for pos, _ in positions}) != len(positions) or len(positions) != len(params):
        raise ValueError(f"{prefix or 'generator'}: the reference's parameters do not map one to one onto "
                         "distgan's (a checkpoint saved without weight norm has no optimizer state to match)")
    return [prefix + name for _, name in positions]


def reference_optimizer_state(model: nn.Module, parts: dict[str, dict[str, torch.Tensor]],
                              saved: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The reference optimizer state dict ``saved`` as per-parameter states keyed by position in
    ``model.parameters()``. ``parts``: the reference state dicts, ``{"": generator}`` or one per
    discriminator set (``{"mpd": ..., "msd": ...}``), each for the submodule of that name."""
    second = [kind for kind in parts if kind != "mpd"]
    order: list[str] = []
    for kind in second + (["mpd"] if "mpd" in parts else []):
        module = getattr(model, kind) if kind else model
        order += _reference_order(module, parts[kind], f"{kind}." if kind else "")
    ids = [index for group in saved["param_groups"] for index in group["params"]]
    if len(ids) != len(order):
        raise ValueError(f"the saved optimizer holds {len(ids)} parameters, the model {len(order)}")
    position = {name: i for i, (name, _) in enumerate(model.named_parameters())}
    return {position[name]: saved["state"][index] for name, index in zip(order, ids, strict=True)
            if index in saved["state"]}


def _distgan_state(saved: dict[str, Any]) -> dict[int, dict[str, Any]]:
    ids = [index for group in saved["param_groups"] for index in group["params"]]
    return {position: saved["state"][index] for position, index in enumerate(ids) if index in saved["state"]}


def _load(engine: ModelEngine, per_parameter: dict[int, dict[str, Any]], source: str) -> None:
    params = list(engine.model.parameters())
    for position, entry in per_parameter.items():
        for key in ("exp_avg", "exp_avg_sq"):
            if key in entry and entry[key].shape != params[position].shape:
                raise ConfigError(f"train.init_optimizers: {source}: the {engine.name}'s saved {key} of parameter {position} has shape "
                                 f"{tuple(entry[key].shape)}, the parameter {tuple(params[position].shape)}")
    current = engine.optimizer.state_dict()
    current["state"] = per_parameter  # the config's learning rate, betas, eps and weight decay stay
    engine.optimizer.load_state_dict(current)


def load_initial_optimizers(states: dict[str, tuple[str, Any]], engines: tuple[ModelEngine, ...],
                            info: ProcessInfo, source: str) -> None:
    """Load the optimizer states ``load_initial_weights`` left (engine name -> (kind, state))."""
    if not states:
        return
    if info.deepspeed_stage is not None:
        raise ConfigError("train.init_optimizers works under DDP and in one process, not under DeepSpeed ZeRO")
    for engine in engines:
        if engine.name in states:
            kind, saved = states[engine.name]
            _load(engine, _distgan_state(saved) if kind == "distgan" else saved, source)
