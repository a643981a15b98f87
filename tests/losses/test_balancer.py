"""The loss balancer (``distgan.losses.balancer``): audiocraft's gradients, a hand-derived case,
its state across a resume, and what it does with non-finite norms and several ranks' norms."""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import types
from pathlib import Path

import pytest
import torch

from distgan.losses.balancer import Balancer
from tests.conftest import REPO_ROOT

# .ci/fetch_references.py puts audiocraft's balancer.py and flashy's utils.py here (or name a folder).
REFERENCES = Path(os.environ.get("DISTGAN_REFERENCES", REPO_ROOT / ".ci" / "cache" / "references"))


def _load(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def reference_balancer(monkeypatch: pytest.MonkeyPatch) -> type:
    """audiocraft 1.3.0's ``Balancer``, with flashy's own moving average and, as in one process,
    ``flashy.distrib.average_metrics`` handing back what it is given."""
    balancer, utils = REFERENCES / "audiocraft" / "losses" / "balancer.py", REFERENCES / "flashy" / "utils.py"
    if not (balancer.is_file() and utils.is_file()):
        pytest.skip(f"audiocraft's balancer.py or flashy's utils.py is not under {REFERENCES} "
                    "(python .ci/fetch_references.py fetches them)")
    flashy, distrib = types.ModuleType("flashy"), types.ModuleType("flashy.distrib")
    distrib.average_metrics = lambda metrics, count=1.0: metrics
    flashy.distrib, flashy.averager = distrib, _load("flashy_utils_reference", utils).averager
    monkeypatch.setitem(sys.modules, "flashy", flashy)
    monkeypatch.setitem(sys.modules, "flashy.distrib", distrib)
    return _load("audiocraft_balancer_reference", balancer).Balancer


def terms(audio: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Three functions of ``audio`` [B, 1, T] whose gradients differ by orders of magnitude."""
    spectrum = torch.stft(audio.squeeze(1), 64, 16, window=torch.hann_window(64), return_complex=True).abs()
    return {"g/mel": (audio - target).abs().mean(), "g/adv": 300.0 * (1 - torch.tanh(audio)).pow(2).mean(),
            "g/fm": 1e-3 * spectrum.sum()}


def steps(count: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(audio, target) per step, of changing scale, so the norms and their averages move."""
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(3, 1, 256, generator=generator) * (1 + step), torch.randn(3, 1, 256, generator=generator))
            for step in range(count)]


def ours(balancer: Balancer, weights: dict[str, float], audio: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    audio = audio.clone().requires_grad_()
    return balancer(terms(audio, target), weights, audio).grad


@pytest.mark.parametrize(("per_batch_item", "rescale_grads"), [(True, True), (False, True), (True, False)])
def test_output_gradients_match_audiocraft_over_steps(reference_balancer: type, per_batch_item: bool,
                                                      rescale_grads: bool) -> None:
    weights = {"g/mel": 45.0, "g/adv": 1.0, "g/fm": 2.0}
    options = {"total_norm": 2.0, "ema_decay": 0.9, "per_batch_item": per_batch_item, "epsilon": 1e-12}
    reference = reference_balancer(weights, balance_grads=rescale_grads, **options)
    mine = Balancer(rescale_grads=rescale_grads, **options)
    for audio, target in steps(5):
        leaf = audio.clone().requires_grad_()
        reference.backward(terms(leaf, target), leaf)
        expected = leaf.grad
        got = ours(mine, weights, audio, target)
        scale = expected.abs().max()
        torch.testing.assert_close(got / scale, expected / scale, rtol=0, atol=1e-5)
        assert got.abs().max() > 0


def test_a_hand_derived_case_two_steps() -> None:
    """l1 = 0.5 ||y||^2 (gradient y) and l2 = c sum(y) (gradient c, of norm c sqrt(T) per clip)."""
    decay, total_norm, c, weights = 0.5, 3.0, 0.25, {"a": 2.0, "b": 1.0}
    balancer = Balancer(total_norm=total_norm, ema_decay=decay, epsilon=0.0)
    ys = [torch.tensor([[[3.0, 4.0]], [[0.0, 1.0]]]), torch.tensor([[[6.0, 8.0]], [[0.0, 0.0]]])]
    for y in ys:
        audio = y.clone().requires_grad_()
        out = balancer({"a": 0.5 * audio.pow(2).sum(), "b": c * audio.sum()}, weights, audio)
    norms_a = [(5.0 + 1.0) / 2, (10.0 + 0.0) / 2]  # the mean over the two clips of each clip's norm
    average_a = (decay * norms_a[0] + norms_a[1]) / (decay + 1)
    average_b = c * math.sqrt(2)  # the same every step
    expected = (2 / 3 * total_norm * ys[1] / average_a + 1 / 3 * total_norm * c * torch.ones_like(ys[1]) / average_b)
    torch.testing.assert_close(out.grad, expected)
    assert float(out.norms["a"]) == pytest.approx(average_a) and float(out.scales["b"]) == pytest.approx(
        1 / 3 * total_norm / average_b)


def test_without_rescaling_the_gradient_is_the_weighted_sum() -> None:
    weights = {"g/mel": 45.0, "g/adv": 0.5, "g/fm": 2.0}
    audio, target = steps(1)[0]
    leaf = audio.clone().requires_grad_()
    sum(weights[name] * term for name, term in terms(leaf, target).items()).backward()
    torch.testing.assert_close(ours(Balancer(rescale_grads=False), weights, audio, target), leaf.grad)


def test_state_dict_round_trip_continues_the_same_averages() -> None:
    weights = {"g/mel": 1.0, "g/adv": 3.0, "g/fm": 1.0}
    uninterrupted, data = Balancer(ema_decay=0.8), steps(5, seed=3)
    for audio, target in data[:3]:
        ours(uninterrupted, weights, audio, target)
    saved = uninterrupted.state_dict()
    resumed = Balancer(ema_decay=0.8)
    resumed.load_state_dict({name: row.clone() for name, row in saved.items()})
    assert saved.keys() == {"g/mel", "g/adv", "g/fm"} and all(row.dtype == torch.float64 for row in saved.values())
    for audio, target in data[3:]:
        assert torch.equal(ours(uninterrupted, weights, audio, target), ours(resumed, weights, audio, target))
    for name, row in uninterrupted.state_dict().items():
        assert torch.equal(row, resumed.state_dict()[name])
    assert not torch.equal(uninterrupted.state_dict()["g/mel"], saved["g/mel"])


def test_a_non_finite_norm_leaves_every_average_as_it_was() -> None:
    balancer, weights = Balancer(), {"g/mel": 1.0, "g/adv": 1.0}
    audio, target = steps(1)[0]
    ours(balancer, weights, audio, target)
    before = balancer.state_dict()
    leaf = audio.clone().requires_grad_()
    poisoned = terms(leaf, target)
    poisoned["g/adv"] = poisoned["g/adv"] * float("nan")
    out = balancer(poisoned, weights, leaf)
    assert not torch.isfinite(out.grad).all()  # the update is skipped by its NaN gradients
    assert all(torch.equal(row, before[name]) for name, row in balancer.state_dict().items())


def test_terms_absent_or_weighted_zero_are_not_balanced() -> None:
    """A warm-up's call (the mel term alone) balances it alone; its average counts one call."""
    balancer = Balancer()
    audio, target = steps(1)[0]
    leaf = audio.clone().requires_grad_()
    only_mel = {"g/mel": terms(leaf, target)["g/mel"]}
    out = balancer(only_mel, {"g/mel": 45.0, "g/adv": 1.0, "g/fm": 0.0}, leaf)
    assert set(out.scales) == {"g/mel"} and set(balancer.state_dict()) == {"g/mel"}
    per_clip = out.grad.flatten(1).norm(dim=1).mean()
    assert float(per_clip) == pytest.approx(1.0, rel=1e-6)  # total_norm, from the one term's own norm


class OtherRank:
    """A reducer that adds a second rank's packed norms: what an all-reduce over two ranks returns."""

    def __init__(self, other: torch.Tensor) -> None:
        self.other, self.calls = other, 0

    def all_reduce_sum(self, tensor: torch.Tensor) -> None:
        self.calls += 1
        tensor.add_(self.other.to(tensor.dtype))


def test_norms_are_averaged_over_ranks_by_clip_count_in_one_reduction() -> None:
    audio, target = steps(1)[0]
    alone = Balancer()
    alone_out = alone({"g/mel": terms(leaf := audio.clone().requires_grad_(), target)["g/mel"]}, {"g/mel": 1.0}, leaf)
    # Another rank with 1 clip whose norm was 3x ours: the mean is (3 * n + 1 * 3n) / 4 = 1.5 n.
    norm = float(alone_out.norms["g/mel"])
    reducer = OtherRank(torch.tensor([1 * 3 * norm, 1.0], dtype=torch.float64))
    shared = Balancer(reducer=reducer)
    leaf = audio.clone().requires_grad_()
    out = shared({"g/mel": terms(leaf, target)["g/mel"]}, {"g/mel": 1.0}, leaf)
    assert reducer.calls == 1
    assert float(out.norms["g/mel"]) == pytest.approx(1.5 * norm, rel=1e-9)
    torch.testing.assert_close(out.grad, alone_out.grad / 1.5)
