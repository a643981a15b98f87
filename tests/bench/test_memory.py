"""`distgan bench memory`: the bytes counted are the tensors there (ZeRO-2 on two ranks: whole
parameters, half of everything else), for a vocoder and for the codec family, and activation
checkpointing lowers the step's peak where a family offers it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from distgan.bench.memory import referenced_bytes
from distgan.config import load_config
from distgan.families import build_generator, build_models
from distgan.models.build import build_discriminators
from tests.train.helpers import REPO_ROOT, run_distgan

BIGVGAN_TINY = REPO_ROOT / "configs" / "bigvgan_tiny.yaml"
DAC_TINY = REPO_ROOT / "configs" / "dac_tiny.yaml"


def test_views_of_one_buffer_count_once() -> None:
    flat = torch.zeros(100)
    assert referenced_bytes([flat, flat[:50], flat[25:75]]) == 400
    assert referenced_bytes([flat[:10], flat[20:30], torch.zeros(3)]) == 92


@pytest.mark.slow
def test_bench_memory_under_zero2_and_with_activation_checkpointing(tmp_path: Path) -> None:
    out = tmp_path / "memory.json"
    done = run_distgan(["bench", "memory", "--config", str(BIGVGAN_TINY), "--modes", "zero2", "--segment", "4096",
                        "--json", str(out)], timeout=300)
    assert "zero2" in done.stdout and "activation checkpointing off" in done.stdout, done.stdout
    measured = json.loads(out.read_text())
    cfg = load_config(BIGVGAN_TINY)
    models = {"generator": build_generator(cfg.model.generator, cfg.audio),
              "discriminator": build_discriminators(cfg.model.discriminator, cfg.audio.sample_rate)}
    assert_zero2_halves(measured["modes"]["zero2"], models)
    off, on = measured["peaks"]["False"], measured["peaks"]["True"]
    assert 0 < on["step_rise_mib"] < off["step_rise_mib"]


@pytest.mark.slow
def test_bench_memory_measures_the_codec_and_skips_the_checkpointing_comparison_it_has_no_switch_for(
        tmp_path: Path) -> None:
    out = tmp_path / "memory.json"
    done = run_distgan(["bench", "memory", "--config", str(DAC_TINY), "--modes", "zero2", "--segment", "4096",
                        "--json", str(out)], timeout=300)
    assert "zero2" in done.stdout and "activation checkpointing" not in done.stdout, done.stdout
    measured = json.loads(out.read_text())
    assert measured["peaks"] == {}
    generator, discriminator = build_models(load_config(DAC_TINY))
    assert_zero2_halves(measured["modes"]["zero2"], {"generator": generator, "discriminator": discriminator})


def assert_zero2_halves(ranks: list[dict], models: dict[str, torch.nn.Module]) -> None:
    for rank in ranks:
        for name, model in models.items():
            held, fp32_bytes = rank[name], 4 * sum(p.numel() for p in model.parameters())
            assert held["params"] == fp32_bytes  # ZeRO-2 keeps whole parameters
            # Gradients, fp32 master and the two Adam moments: this rank's half (alignment padding
            # and AdamW's step counts aside).
            for key, whole in (("grads", fp32_bytes), ("master", fp32_bytes), ("moments", 2 * fp32_bytes)):
                assert held[key] == pytest.approx(whole / 2, rel=0.01), (name, key)


def test_a_segment_the_recipe_refuses_is_named_before_any_rank_starts() -> None:
    done = run_distgan(["bench", "memory", "--config", str(REPO_ROOT / "configs" / "encodec_tiny.yaml"), "--segment",
                        "4100"], check=False, timeout=60)
    assert done.returncode == 2
    assert "data.segment_samples=4100: a whole number of code frames" in done.stderr and "--segment" in done.stderr
    assert "Traceback" not in done.stderr and "rank" not in done.stdout
