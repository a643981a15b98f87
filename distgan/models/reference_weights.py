"""State dicts of the reference implementations (jik876/hifi-gan, NVIDIA/BigVGAN) for distgan's modules.

Fine-tuning from a released checkpoint needs its tensors under distgan's names. The tensors are the
same; the names differ in two ways:

- Norms. The references use the hook-based ``torch.nn.utils.weight_norm`` and ``spectral_norm``,
  which store ``weight_g`` and ``weight_v`` (weight norm) or ``weight_orig``, ``weight_u`` and
  ``weight_v`` (spectral norm). distgan uses parametrizations (see ``distgan.models.generator``), which
  store the same tensors as ``parametrizations.weight.original0`` / ``original1``, or
  ``parametrizations.weight.original`` with the power iteration's ``parametrizations.weight.0._u`` /
  ``_v``. Which form a key takes is decided by the target module's own keys, so a checkpoint saved
  after ``remove_weight_norm`` (a plain ``weight``) loads into a weight-normed module (``g = |w|``
  per output channel, ``v = w``) and a weight-normed checkpoint loads into a folded module
  (``w = g v / |v|``).
- Module paths, per family: a module class lists them in ``REFERENCE_RENAMES`` as
  ``(pattern, replacement)`` regular expressions applied in order to every key; a ``None``
  replacement drops the key (constants that distgan keeps out of state dicts).
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
