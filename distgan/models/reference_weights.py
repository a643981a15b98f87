"""State dicts of the reference implementations (jik876/hifi-gan, NVIDIA/BigVGAN) for distgan's modules.

Fine-tuning from a released checkpoint needs its tensors under distgan's names. The tensors are the
same; the names differ in two ways:

- Norms. The references use the hook-based ``torch.nn.utils.weight_norm`` and ``spectral_norm``,
  which store ``weight_g`` and ``weight_v`` (weight norm) or ``weight_orig``, ``weight_u`` and
  ``weight_v`` (spectral norm). distgan uses parametrizations (see ``distgan.families.hifigan.generator``), which
  store the same tensors as ``parametrizations.weight.original0`` / ``original1``, or
  ``parametrizations.weight.original`` with the power iteration's ``parametrizations.weight.0._u`` /
  ``_v``. Which form a key takes is decided by the target module's own keys, so a checkpoint saved
  after ``remove_weight_norm`` (a plain ``weight``) loads into a weight-normed module (``g = |w|``
  per output channel, ``v = w``) and a weight-normed checkpoint loads into a folded module
  (``w = g v / |v|``).
- Module paths, per family: a module class lists them in ``REFERENCE_RENAMES`` as
  ``(pattern, replacement)`` regular expressions applied in order to every key; a ``None``
  replacement drops the key (constants that distgan keeps out of state dicts).

The other way, for ``distgan export --format hifigan|bigvgan`` (``reference_state_dict``): the
parametrizations' keys become the hook-based norms' leaves, a plain weight that the reference keeps
weight-normed becomes ``g = |w|``, ``v = w``, the class's ``reference_export_renames`` (the inverse
of its ``REFERENCE_RENAMES``) apply, and the constants distgan keeps out of its state dicts are put
back from the submodules that hold them (a class's ``REFERENCE_BUFFERS``: reference name -> attribute).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence

import torch
from torch import nn

WEIGHT_NORM_G = "parametrizations.weight.original0"
WEIGHT_NORM_V = "parametrizations.weight.original1"
SPECTRAL_ORIGINAL = "parametrizations.weight.original"
SPECTRAL_U = "parametrizations.weight.0._u"
SPECTRAL_V = "parametrizations.weight.0._v"
# The leaves of the hook-based norms, and a plain weight.
WEIGHT_LEAVES = ("weight", "weight_g", "weight_v", "weight_orig", "weight_u")

Renames = Sequence[tuple[str, str | None]]


def _rename(state_dict: Mapping[str, torch.Tensor], renames: Renames) -> dict[str, torch.Tensor]:
    renamed = {}
    for key, value in state_dict.items():
        new_key: str | None = key
        for pattern, replacement in renames:
            if re.search(pattern, new_key):
                if replacement is None:
                    new_key = None
                    break
                new_key = re.sub(pattern, replacement, new_key)
        if new_key is not None:
            renamed[new_key] = value
    return renamed


def _norm_per_output(weight: torch.Tensor) -> torch.Tensor:
    """``|w|`` over every dimension but the first, shaped like weight norm's ``g``."""
    return weight.flatten(1).norm(dim=1).view(-1, *[1] * (weight.dim() - 1))


def _convert(owner: str, leaves: dict[str, torch.Tensor], target_keys: Collection[str]) -> dict[str, torch.Tensor]:
    """One module's weight, in whichever form the target module keeps it."""
    prefix = f"{owner}." if owner else ""
    if "weight_orig" in leaves:  # spectral norm
        if prefix + SPECTRAL_ORIGINAL not in target_keys:
            raise ValueError(f"{owner}: spectral-normed in the checkpoint but not in the target module")
        return {prefix + SPECTRAL_ORIGINAL: leaves["weight_orig"], prefix + SPECTRAL_U: leaves["weight_u"],
                prefix + SPECTRAL_V: leaves["weight_v"]}
    if "weight_g" in leaves:  # weight norm
        g, v = leaves["weight_g"], leaves["weight_v"]
        if prefix + WEIGHT_NORM_G in target_keys:
            return {prefix + WEIGHT_NORM_G: g, prefix + WEIGHT_NORM_V: v}
        return {prefix + "weight": v * (g / _norm_per_output(v))}
    weight = leaves["weight"]
    if prefix + WEIGHT_NORM_G in target_keys:
        return {prefix + WEIGHT_NORM_G: _norm_per_output(weight), prefix + WEIGHT_NORM_V: weight}
    return {prefix + "weight": weight}


def map_reference_state_dict(state_dict: Mapping[str, torch.Tensor], target_keys: Collection[str],
                             renames: Renames = ()) -> dict[str, torch.Tensor]:
    """``state_dict`` of a reference module under the keys of a distgan module whose keys are ``target_keys``."""
    mapped: dict[str, torch.Tensor] = {}
    weights: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in _rename(state_dict, renames).items():
        owner, _, leaf = key.rpartition(".")
        if leaf in WEIGHT_LEAVES:
            weights.setdefault(owner, {})[leaf] = value
        else:
            mapped[key] = value
    targets = set(target_keys)
    for owner, leaves in weights.items():
        mapped.update(_convert(owner, leaves, targets))
    return mapped


def load_reference_state_dict(module: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load a reference implementation's ``state_dict`` into ``module`` (strictly: every key used, none missing).

    ``module`` is the distgan counterpart of the module that saved ``state_dict`` (e.g. a
    ``BigVGANGenerator`` for a BigVGAN checkpoint's ``"generator"`` entry, a
    ``MultiPeriodDiscriminator`` for its ``"mpd"``); its class's ``REFERENCE_RENAMES``, if any, apply.
    """
    renames = getattr(type(module), "REFERENCE_RENAMES", ())
    module.load_state_dict(map_reference_state_dict(state_dict, module.state_dict().keys(), renames))


# distgan's parametrization leaves -> the hook-based norms' leaves.
HOOK_LEAVES = {WEIGHT_NORM_G: "weight_g", WEIGHT_NORM_V: "weight_v", SPECTRAL_ORIGINAL: "weight_orig",
               SPECTRAL_U: "weight_u", SPECTRAL_V: "weight_v"}


def reference_key(key: str, renames: Renames = ()) -> str:
    """A distgan state-dict key under the reference's name: hook-norm leaf first, then ``renames``."""
    for ours, theirs in HOOK_LEAVES.items():
        if key == ours or key.endswith("." + ours):
            key = key[: len(key) - len(ours)] + theirs
            break
    renamed = _rename({key: torch.empty(0)}, renames)
    if len(renamed) != 1:
        raise ValueError(f"{key}: an export rename dropped it")
    return next(iter(renamed))


def export_renames(module: nn.Module) -> Renames:
    """The renames that turn ``module``'s keys into its reference's (none for most classes)."""
    return getattr(module, "reference_export_renames", getattr(type(module), "REFERENCE_EXPORT_RENAMES", ()))


def reference_state_dict(module: nn.Module, weight_normed: Collection[str] = ()) -> dict[str, torch.Tensor]:
    """``module``'s state dict as its reference implementation's module holds it (the inverse of
    ``load_reference_state_dict``), ready for that module's ``load_state_dict(strict=True)``.

    ``weight_normed``: the modules (reference names) whose plain ``weight`` the reference keeps
    weight-normed, for a ``module`` whose weight norm was folded away; parametrized weights need
    nothing (their ``g`` and ``v`` are exported as they are).
    """
    renames = export_renames(module)
    state: dict[str, torch.Tensor] = {}
    for key, value in module.state_dict().items():
        name = reference_key(key, renames)
        owner, _, leaf = name.rpartition(".")
        if leaf == "weight" and owner in weight_normed:
            prefix = f"{owner}." if owner else ""
            state[prefix + "weight_g"], state[prefix + "weight_v"] = _norm_per_output(value), value
        else:
            state[name] = value
    for path, submodule in module.named_modules():
        for name, attribute in getattr(type(submodule), "REFERENCE_BUFFERS", {}).items():
            state[reference_key(f"{path}.{name}" if path else name, renames)] = getattr(submodule, attribute)
    return state


def reference_parameter_names(module: nn.Module) -> list[str]:
    """The reference's names of ``module``'s parameters, in ``module.parameters()`` order (the order
    of an optimizer's state indices)."""
    renames = export_renames(module)
    return [reference_key(name, renames) for name, _ in module.named_parameters()]
