"""The ``perf`` switches: torch.compile gives eager's losses and gradients and compiles only in the
first step; the backend flags and AdamW's implementation follow the config."""

from __future__ import annotations

import contextlib

import pytest
import torch

from distgan.config import load_config
from distgan.families import build_generator
from distgan.losses.mel import MelSpectrogram
from distgan.models.build import build_discriminators
from distgan.train.engine import build_engines
from distgan.train.performance import apply_backend_flags, optimizer_kwargs
from distgan.train.step import GANStep
from tests.train.helpers import FAST, TINY

# The smallest HiFi-GAN that still has every kind of layer: one MRF kernel, one period, one scale.
SMALL = [*FAST, "data.batch_size=1", "data.segment_samples=2048", "model.generator.upsample_initial_channel=16",
         "model.generator.resblock_kernel_sizes=[3]", "model.generator.resblock_dilation_sizes=[[1,3]]",
         "model.discriminator.periods=[2]", "model.discriminator.kinds=[mpd]"]


def _losses_and_grad_norms(overrides: list[str], steps: int, after_first=contextlib.nullcontext
                           ) -> list[dict[str, float]]:
    cfg = load_config(TINY, [*SMALL, *overrides])
    torch.manual_seed(0)
    generator = build_generator(cfg.model.generator, cfg.audio)
    discriminator = build_discriminators(cfg.model.discriminator, cfg.audio.sample_rate)
    g, d, info = build_engines(cfg, generator, discriminator)
    mel = MelSpectrogram(cfg.audio)
    step = GANStep(cfg, g, d, info, mel, MelSpectrogram.for_loss(cfg.audio), lambda _: contextlib.nullcontext(),
                   lambda _: None)
    wave = 0.3 * torch.randn(1, 2048, generator=torch.Generator().manual_seed(1))
    out = []
    for i in range(steps):
        with contextlib.nullcontext() if i == 0 else after_first():
            values, skipped = step([wave], i)
        assert not skipped
        out.append({k: float(v) for k, v in values.items()})
    return out


@pytest.mark.slow  # dynamo traces G and D forward and backward: ~10 s on two idle cores
def test_compiled_steps_match_eager_and_only_the_first_compiles() -> None:
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    eager = _losses_and_grad_norms([], steps=2)
    graphs: list[int] = []

    @contextlib.contextmanager
    def no_recompile():
        graphs.append(counters["stats"]["unique_graphs"])
        with torch._dynamo.config.patch(error_on_recompile=True):
            yield

    # aot_eager: dynamo's graphs and AOTAutograd's backward, without the minutes of C++ builds.
    compiled = _losses_and_grad_norms(["perf.compile=true", "perf.compile_backend=aot_eager"],
                                      after_first=no_recompile, steps=2)
    torch._dynamo.reset()
    assert graphs[0] > 0 and graphs == [graphs[0]] and counters["stats"]["unique_graphs"] == graphs[0]
    assert set(compiled[0]) == set(eager[0]) >= {"d/total", "g/total", "grad_norm/g", "grad_norm/d"}
    for ours, theirs in zip(compiled, eager, strict=True):
        for key in theirs:
            assert ours[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-6), key
    assert eager[1]["g/total"] != eager[0]["g/total"]  # the first step trained: the second compares updated models


def test_optimizer_impl_auto_is_fused_on_cuda_and_on_cpu() -> None:
    assert optimizer_kwargs("auto", torch.device("cuda")) == {"fused": True}
    assert optimizer_kwargs("auto", torch.device("cpu")) == {"fused": True}  # skips on device: train/skips.py
    assert optimizer_kwargs("foreach", torch.device("cpu")) == {"foreach": True}
    cfg = load_config(TINY, [*SMALL, "perf.optimizer_impl=foreach"])
    g, _, _ = build_engines(cfg, build_generator(cfg.model.generator, cfg.audio),
                            build_discriminators(cfg.model.discriminator, cfg.audio.sample_rate))
    assert g.optimizer.defaults["foreach"] is True


def test_backend_flags_follow_the_config() -> None:
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    try:
        apply_backend_flags(load_config(TINY, ["perf.cudnn_benchmark=true", "perf.tensorfloat=false"]).perf)
        assert (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
                torch.backends.cuda.matmul.allow_tf32) == (True, False, False)
        apply_backend_flags(load_config(TINY, ["perf.cudnn_benchmark=false", "perf.tensorfloat=true"]).perf)
        assert (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32) == (False, True)
    finally:
        (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
         torch.backends.cuda.matmul.allow_tf32) = saved


def test_without_clipping_the_step_only_measures_the_norm(monkeypatch: pytest.MonkeyPatch) -> None:
    from distgan.config import OptimizerConfig
    from distgan.train.ddp_engine import DDPEngine

    def engine(grad_clip: float | None) -> DDPEngine:
        model = torch.nn.Linear(4, 3)
        model(torch.ones(2, 4)).sum().mul(100).backward()  # gradients independent of the random weights
        return DDPEngine("generator", model, model, OptimizerConfig(grad_clip=grad_clip), "fp32",
                         torch.device("cpu"), grad_accum=1)

    clipped = engine(0.5)
    expected = torch.cat([p.grad.flatten() for p in clipped.model.parameters()]).norm().item()
    assert clipped.step().grad_norm == pytest.approx(expected, rel=1e-6) and expected > 0.5
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda *a, **k: pytest.fail("clipping work without clipping"))
    unclipped = engine(None)
    before = [p.detach().clone() for p in unclipped.model.parameters()]
    result = unclipped.step()
    assert result.grad_norm == pytest.approx(expected, rel=1e-6) and not result.skipped
    assert all(not torch.equal(a, b) for a, b in zip(before, unclipped.model.parameters(), strict=True))
