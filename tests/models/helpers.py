"""What the BigVGAN and HiFi-GAN tests share, above all the parity tests against the reference
implementations (hifi-gan, bigvgan).

The references are test-only: each parity module ``pytest.importorskip``s its package, so a checkout
without them skips those tests rather than failing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import pytest
import torch
from torch import nn

from distgan.models.reference_weights import map_reference_state_dict

# fp32 outputs of the same computation in the same order agree far closer than this.
ATOL = 1e-5
# Relative spread of the sample std of n uniform draws is sqrt(0.8 / n) / 2 ~ 0.45 / sqrt(n); two
# independent draws differ by sqrt(2) times that. Six of those is a bound a correct init never
# reaches, while N(0, 0.01) against PyTorch's default misses it several times over.
STD_SPREAD = 6 * 2**0.5 * 0.45


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """One intra-op thread: these tensors are small, and on a shared 2-core runner threads mostly wait."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def randomize_snake(model: nn.Module, seed: int = 0) -> None:
    """Move Snake's alpha/beta off their initial value, so parity covers the parameters' effect."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith((".alpha", ".beta")):
                param.copy_(0.3 * torch.randn(param.shape, generator=generator))


def assert_same_outputs(reference: tuple[list, list], ours: tuple[list, list], atol: float = ATOL) -> None:
    """Every sub-discriminator's logits (flattened: references may keep them 2-D) and feature maps."""
    (ref_logits, ref_features), (logits, features) = reference, ours
    assert len(ref_logits) == len(logits) and len(ref_features) == len(features)
    for ref, our in zip(ref_logits, logits, strict=True):
        torch.testing.assert_close(our, ref.flatten(1), rtol=0, atol=atol)
    for ref_maps, maps in zip(ref_features, features, strict=True):
        assert len(ref_maps) == len(maps)
        for ref, our in zip(ref_maps, maps, strict=True):
            torch.testing.assert_close(our, ref, rtol=0, atol=atol)


def effective_weights(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per weight-normed layer (distgan's keys), the weight a forward pass uses: ``g v / |v|``."""
    weights = {}
    for key, g in state_dict.items():
        if key.endswith(".parametrizations.weight.original0"):
            layer = key.removesuffix(".parametrizations.weight.original0")
            v = state_dict[f"{layer}.parametrizations.weight.original1"]
            weights[layer] = torch._weight_norm(v, g, 0)
    return weights


def assert_same_initial_distribution(reference: nn.Module, ours: nn.Module,
                                     renames: Sequence[tuple[str, str | None]] = ()) -> int:
    """Layer by layer, the std of the initial effective weights agree within sampling spread.

    Returns the number of layers compared (so a caller can check that it compared any).
    """
    ours_sd = ours.state_dict()
    ref_weights = effective_weights(map_reference_state_dict(reference.state_dict(), ours_sd.keys(), renames))
    our_weights = effective_weights(ours_sd)
    assert ref_weights.keys() == our_weights.keys()
    for layer, ref in ref_weights.items():
        tolerance = STD_SPREAD / ref.numel() ** 0.5
        assert our_weights[layer].std().item() == pytest.approx(ref.std().item(), rel=tolerance), layer
    return len(ref_weights)
