"""``distgan bench step --baseline reference`` for Vocos: VocosExp's step (``vocos`` 0.1.0's modules,
``distgan/families/vocos/reference.py``) computes what distgan's step computes from the same
weights and batch, and a config vocos' code cannot build is refused by name."""

from __future__ import annotations

import pytest
import torch

from distgan.config import load_config
from tests.bench.reference_pair import steps_on_the_same_weights
from tests.train.helpers import FAST, REPO_ROOT

pytest.importorskip("vocos", reason="the vocos reference package is not installed")
pytestmark = [pytest.mark.filterwarnings("ignore:.*torch.nn.utils.weight_norm.* is deprecated:FutureWarning")]

VOCOS_TINY = REPO_ROOT / "configs" / "vocos_tiny.yaml"
# configs/vocos_tiny.yaml with vocos' fixed MPD widths (its code has no others), one period.
SMALL_VOCOS = [*FAST, "data.batch_size=1", "data.segment_samples=2048", "model.generator.mpd_periods=[2]",
               "model.generator.mpd_channels=[32,128,512,1024,1024]"]


def test_vocos_original_step_and_distgans_agree_on_the_first_step() -> None:
    cfg = load_config(VOCOS_TINY, SMALL_VOCOS)
    ours, reference = steps_on_the_same_weights(cfg)
    t = torch.arange(2048) / 24000
    wave = (0.5 * torch.sin(2 * torch.pi * 440 * t) + 0.05 * torch.randn(2048, generator=torch.Generator().manual_seed(1)))[None]
    theirs = reference(reference.prepare(wave))
    values, _ = ours([wave], 0)
    # D's loss before any update, and G's mel loss of the same generated audio.
    assert float(theirs["d/total"]) == pytest.approx(float(values["d/total"]), rel=1e-4)
    assert float(theirs["g/mel"]) == pytest.approx(float(values["g/mel"]), rel=1e-4)
    # G's total goes through D after its update: equal only if both D updates were the same.
    assert float(theirs["g/total"]) == pytest.approx(float(values["g/total"]), rel=1e-3)


def test_a_vocos_config_the_original_cannot_build_is_refused_naming_the_field() -> None:
    from distgan.bench.reference_step import ReferenceMismatch, check_config

    with pytest.raises(ReferenceMismatch, match=r"model\.generator\.mpd_channels is \[8, 16, 32, 32, 32\]"):
        check_config(load_config(VOCOS_TINY, []))
