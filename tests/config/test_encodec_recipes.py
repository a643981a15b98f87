"""configs/encodec_24khz.yaml and configs/encodec_tiny.yaml load, build and say what they claim; the
EnCodec section refuses what would train something other than what it says. (The 24 kHz layout's
parameter count and state dict against ``encodec`` itself: tests/models/test_encodec_parity.py.)"""

from __future__ import annotations

import pytest

from distgan.config import ConfigError, load_config
from distgan.families import build_models, family_of
from tests.train.helpers import REPO_ROOT

CONFIGS = REPO_ROOT / "configs"


def test_the_24khz_recipe_is_the_papers_training() -> None:
    cfg = load_config(CONFIGS / "encodec_24khz.yaml")
    g = cfg.model.generator
    assert family_of(cfg).name == "encodec" and cfg.audio.sample_rate == 24000
    assert g.hop_length() == 320 and g.frame_rate(24000) == 75
    assert g.target_bandwidths == [1.5, 3.0, 6.0, 12.0, 24.0]
    assert g.bandwidth_codebooks(24000) == [2, 4, 8, 16, 32] and g.n_codebooks(24000) == 32
    assert (g.quantizer, g.ema_decay, g.kmeans_iters, g.dead_code_threshold, g.causal) == ("ema", 0.99, 50, 2, True)
    assert (cfg.loss.mel_weight, cfg.loss.adv_weight, cfg.loss.fm_weight, g.time_weight) == (1.0, 3.0, 3.0, 0.1)
    assert cfg.model.discriminator.kinds == ["msstftd"] and cfg.loss.adversarial == "hinge"


@pytest.mark.parametrize("quantizer", ["ema", "factorized"])
def test_the_tiny_recipe_builds_either_quantizer(quantizer: str) -> None:
    cfg = load_config(CONFIGS / "encodec_tiny.yaml", [f"model.generator.quantizer={quantizer}"])
    generator, discriminator = build_models(cfg)
    assert generator.n_codebooks == 4 and generator.quantizer.kind == quantizer
    assert cfg.model.generator.bandwidth_codebooks(cfg.audio.sample_rate) == [1, 2, 4]
    assert sum(p.numel() for p in discriminator.parameters()) > 0


@pytest.mark.parametrize(("override", "names"), [
    ("model.generator.codebook_size=1000", "codebook_size=1000"),
    ("model.generator.target_bandwidths=[3.0,4.0]", "the same number of codebooks twice"),
    ("model.generator.target_bandwidths=[6.0,3.0]", "rising order"),
    ("data.segment_samples=8200", "a whole number of code frames"),
    ("loss.adversarial=lsgan", "hinge"),
    ("model.generator.ema_decay=1.0", "ema_decay=1.0"),
    ("model.generator.norm=time_group_norm", "causal: false"),
    ("model.generator.freq_fmin=9000", "freq_fmin=9000"),
    ("model.generator.quantizer=kmeans", "quantizer"),
])
def test_the_section_refuses_what_it_cannot_train(override: str, names: str) -> None:
    with pytest.raises(ConfigError, match=names.replace("[", r"\[").replace("(", r"\(")):
        load_config(CONFIGS / "encodec_tiny.yaml", [override])
