"""What a step no longer computes: the real half's backward through the frozen D, clipping when off."""

from __future__ import annotations

import pytest
import torch

from distgan.config import OptimizerConfig, load_config
from distgan.families.objective import judge_generated
from distgan.models.build import build_discriminators
from distgan.train.ddp_engine import DDPEngine
from tests.train.helpers import TINY


@pytest.fixture(scope="module")
def discriminator() -> torch.nn.Module:
    cfg = load_config(TINY)
    torch.manual_seed(0)
    d = build_discriminators(cfg.model.discriminator, cfg.audio.sample_rate)
    return d.requires_grad_(False)  # frozen, as in the G update


def _estimates(model: torch.nn.Module) -> list[torch.Tensor]:
    """Spectral norm's power-iteration state (u and v of each parametrization)."""
    return [t.clone() for m in model.modules() if hasattr(m, "_u") for t in (m._u, m._v)]


def _set_estimates(model: torch.nn.Module, saved: list[torch.Tensor]) -> None:
    for target, value in zip([t for m in model.modules() if hasattr(m, "_u") for t in (m._u, m._v)], saved,
                             strict=True):
        target.copy_(value)


def test_the_g_update_judges_as_one_call_did_and_backpropagates_only_the_generated_half(discriminator) -> None:
    """MSD's first scale has spectral norm: the two calls see the same normalised weights and
    advance its power iteration once, as one concatenated call did (one iteration more would fail
    the first assertion, none the second)."""
    d = discriminator
    torch.manual_seed(0)
    real, fake = torch.randn(2, 2048) * 0.1, (torch.randn(2, 1, 2048) * 0.1).requires_grad_()
    before = _estimates(d)
    assert before, "tiny's MSD has no spectral norm: this test would check nothing"
    logits, feats = d(torch.cat([real.unsqueeze(1), fake]))
    after_one_call = _estimates(d)
    _set_estimates(d, before)
    fake_logits, real_feats, fake_feats = judge_generated(d, real, fake)
    assert all(torch.equal(a, b) for a, b in zip(_estimates(d), after_one_call, strict=True))  # one iteration
    assert not all(torch.equal(a, b) for a, b in zip(after_one_call, before, strict=True))  # not none
    for new, old in zip(fake_logits, logits, strict=True):
        torch.testing.assert_close(new, old[2:], rtol=1e-5, atol=1e-6)
    for new_real, new_fake, old in zip(real_feats, fake_feats, feats, strict=True):
        for a, b, c in zip(new_real, new_fake, old, strict=True):
            torch.testing.assert_close(a, c[:2], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(b, c[2:], rtol=1e-5, atol=1e-6)
            assert a.grad_fn is None and b.grad_fn is not None  # real: targets, no graph to backpropagate


def test_no_clipping_work_without_grad_clip(monkeypatch: pytest.MonkeyPatch) -> None:
    """``optim.*.grad_clip`` null: the norm is computed (logged, and it tells non-finite gradients)
    but nothing is clipped; set, it clips."""
    clipped: list[float] = []
    clip = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *args, **kwargs):
        clipped.append(max_norm)
        return clip(params, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 1))
    engine = DDPEngine("generator", model, model, OptimizerConfig(), "fp32", torch.device("cpu"), 1)
    engine.backward(engine(torch.randn(4, 8)).square().mean())
    expected = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    norm = engine.step().grad_norm
    assert clipped == [] and float(norm) == pytest.approx(float(expected), rel=1e-5)
    engine.grad_clip = 1e-3
    engine.backward(engine(torch.randn(4, 8)).square().mean())
    engine.step()
    assert clipped == [1e-3]
