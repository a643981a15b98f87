"""``distgan bench step`` for the DAC family: ``scripts/train.py``'s ``train_loop`` with ``dac``'s
modules (``distgan/families/dac/reference.py``) computes what distgan's step computes from the same
weights and batch, a config DAC's code cannot build is refused by name, and the plain loop runs the
codec through its objective."""

from __future__ import annotations

import pytest
import torch

from distgan.bench.step import bench_plain
from distgan.config import load_config
from tests.bench.reference_pair import steps_on_the_same_weights
from tests.train.helpers import FAST, REPO_ROOT

pytest.importorskip("dac", reason="the descript-audio-codec reference package is not installed")
pytestmark = [pytest.mark.filterwarnings("ignore:.*torch.nn.utils.weight_norm.* is deprecated:FutureWarning")]

DAC_TINY = REPO_ROOT / "configs" / "dac_tiny.yaml"
# configs/dac_tiny.yaml with DAC's fixed discriminator widths (its code has no others), one period,
# and no quantizer dropout: DAC draws its counts from the global RNG, distgan from the step's key.
SMALL_DAC = [*FAST, "data.batch_size=2", "data.segment_samples=2048", "model.generator.mpd_periods=[2]",
             "model.generator.mpd_channels=[32,128,512,1024,1024]", "model.generator.mrd_channels=32",
             "model.generator.quantizer_dropout=0.0"]


def test_dac_train_loop_and_distgans_step_agree_on_the_first_step() -> None:
    cfg = load_config(DAC_TINY, SMALL_DAC)
    ours, reference = steps_on_the_same_weights(cfg)
    t = torch.arange(2048) / 16000
    noise = 0.05 * torch.randn(2, 2048, generator=torch.Generator().manual_seed(1))
    wave = 0.5 * torch.sin(2 * torch.pi * torch.tensor([[440.0], [300.0]]) * t) + noise
    theirs = [reference(reference.prepare(wave)) for _ in range(2)]
    values = [ours([wave], step)[0] for step in range(2)]
    # D's loss before any update, and G's mel loss of the same reconstruction.
    assert float(theirs[0]["d/total"]) == pytest.approx(float(values[0]["d/total"]), rel=1e-6)
    assert float(theirs[0]["g/mel"]) == pytest.approx(float(values[0]["g/mel"]), rel=1e-6)
    # G's total goes through D after its update (clipped at 10): equal only if both D updates were.
    assert float(theirs[0]["g/total"]) == pytest.approx(float(values[0]["g/total"]), rel=1e-6)
    # The second step starts from both G and D updated (clipped, AdamW, the schedules' first step).
    for name in ("d/total", "g/mel", "g/total"):
        assert float(theirs[1][name]) == pytest.approx(float(values[1][name]), rel=1e-5), name
    assert float(theirs[1]["g/total"]) != pytest.approx(float(theirs[0]["g/total"]), rel=1e-2)


def test_a_dac_config_the_original_cannot_build_is_refused_naming_the_field() -> None:
    from distgan.bench.reference_step import ReferenceMismatch, check_config

    with pytest.raises(ReferenceMismatch, match=r"model\.generator\.mpd_channels is \[8, 16, 32, 32, 32\]"):
        check_config(load_config(DAC_TINY, []))
    with pytest.raises(ReferenceMismatch, match=r"optim\.discriminator\.grad_clip is 5\.0, the original code has 10\.0"):
        check_config(load_config(DAC_TINY, [*SMALL_DAC, "optim.discriminator.grad_clip=5.0"]))


def test_the_plain_loop_trains_the_codec_through_its_objective() -> None:
    cfg = load_config(DAC_TINY, [*FAST, "data.batch_size=2", "data.segment_samples=2048"])
    waves = [0.3 * torch.randn(2, 2048, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    found = bench_plain(cfg, steps=1, warmup=1, batches=waves, device=torch.device("cpu"))
    assert found["step"] > 0
