"""Loading the reference implementations' state dicts: the hook-based norms' keys become
parametrizations, plain and weight-normed weights convert either way, and family renames apply.
And back (export): parametrizations and folded weights become the hook-based norms' keys."""

from __future__ import annotations

import warnings
from typing import ClassVar

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from distgan.models.reference_weights import (
    load_reference_state_dict,
    map_reference_state_dict,
    reference_state_dict,
)


def hook_normed(norm: str) -> nn.Conv1d:
    """A conv with the deprecated hook-based norm, as the reference implementations build them."""
    torch.manual_seed(0)
    conv = nn.Conv1d(3, 4, 5, padding=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.nn.utils.weight_norm(conv) if norm == "weight" else torch.nn.utils.spectral_norm(conv)


def parametrized(norm: str | None) -> nn.Conv1d:
    torch.manual_seed(1)  # other weights than the checkpoint's
    conv = nn.Conv1d(3, 4, 5, padding=2)
    if norm is None:
        return conv
    return weight_norm(conv) if norm == "weight" else spectral_norm(conv)


@pytest.mark.parametrize("norm", ["weight", "spectral"])
def test_hook_norm_checkpoints_load_into_parametrizations(norm: str) -> None:
    reference, ours = hook_normed(norm).eval(), parametrized(norm).eval()
    x = torch.randn(2, 3, 20)
    with torch.no_grad():
        reference(x)  # spectral norm: the stored u, v as they are after a forward
        load_reference_state_dict(ours, reference.state_dict())
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=1e-6)


def test_weight_norm_converts_to_and_from_plain_weights() -> None:
    reference = hook_normed("weight").eval()
    x = torch.randn(2, 3, 20)
    with torch.no_grad():
        expected = reference(x)
        folded = parametrized(None)
        load_reference_state_dict(folded, reference.state_dict())  # g, v -> w
        torch.testing.assert_close(folded(x), expected, rtol=0, atol=1e-6)
        normed = parametrized("weight")
        load_reference_state_dict(normed, folded.state_dict())  # w -> g = |w|, v = w
        torch.testing.assert_close(normed(x), expected, rtol=0, atol=1e-6)
        torch.testing.assert_close(normed.parametrizations.weight.original0, reference.weight_g)


def test_a_spectral_normed_checkpoint_is_refused_by_a_module_without_spectral_norm() -> None:
    with pytest.raises(ValueError, match="spectral-normed"):
        load_reference_state_dict(parametrized("weight"), hook_normed("spectral").state_dict())


class Renamed(nn.Module):
    """A module whose reference named its layer ``inner.0`` and kept a constant buffer."""

    REFERENCE_RENAMES: ClassVar[tuple[tuple[str, str | None], ...]] = (
        (r"^inner\.0\.", "layer."),
        (r"\.constant$", None),
    )
    REFERENCE_EXPORT_RENAMES: ClassVar[tuple[tuple[str, str], ...]] = ((r"^layer\.", "inner.0."),)

    def __init__(self) -> None:
        super().__init__()
        self.layer = weight_norm(nn.Conv1d(3, 4, 5))


def test_family_renames_apply_and_a_none_drops_the_key() -> None:
    reference = nn.Module()
    reference.inner = nn.ModuleList([hook_normed("weight")])
    reference.inner[0].register_buffer("constant", torch.ones(3))
    ours = Renamed()
    load_reference_state_dict(ours, reference.state_dict())
    torch.testing.assert_close(ours.layer.parametrizations.weight.original1, reference.inner[0].weight_v)
    mapped = map_reference_state_dict(reference.state_dict(), ours.state_dict().keys(), Renamed.REFERENCE_RENAMES)
    assert set(mapped) == set(ours.state_dict())
    exported = reference_state_dict(ours)
    assert set(exported) == set(reference.state_dict()) - {"inner.0.constant"}
    torch.testing.assert_close(exported["inner.0.weight_v"], reference.inner[0].weight_v)


def test_loading_is_strict() -> None:
    state = hook_normed("weight").state_dict()
    state["extra.bias"] = torch.zeros(1)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        load_reference_state_dict(parametrized("weight"), state)


@pytest.mark.parametrize("norm", ["weight", "spectral"])
def test_parametrizations_export_to_hook_norms(norm: str) -> None:
    ours, reference = parametrized(norm).eval(), hook_normed(norm).eval()  # different weights
    x = torch.randn(2, 3, 20)
    with torch.no_grad():
        reference.load_state_dict(reference_state_dict(ours))  # strict
        torch.testing.assert_close(reference(x), ours(x), rtol=0, atol=1e-6)


def test_a_folded_weight_exports_weight_normed() -> None:
    folded, reference = parametrized("weight").eval(), hook_normed("weight").eval()
    parametrize.remove_parametrizations(folded, "weight", leave_parametrized=True)
    x = torch.randn(2, 3, 20)
    with torch.no_grad():
        reference.load_state_dict(reference_state_dict(folded, weight_normed={""}))  # "": the conv itself
        torch.testing.assert_close(reference(x), folded(x), rtol=0, atol=1e-6)
    with pytest.raises(RuntimeError, match="Missing key"):
        reference.load_state_dict(reference_state_dict(folded))  # a plain weight, unless asked
