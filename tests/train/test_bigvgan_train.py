"""configs/bigvgan_tiny.yaml (BigVGAN v2 in miniature: AMP blocks, MPD + CQT-D, multi-scale mel loss)
trains under DDP and DeepSpeed ZeRO on two CPU processes, and learns in one.

Kept cheap on purpose (tests/train/test_deepspeed.py covers the launch modes in depth with HiFi-GAN):
two steps under DDP, ZeRO-1 and ZeRO-3 (with activation checkpointing, the partitioned parameters
gathered again for the recomputation). A BigVGAN step under ZeRO-2 runs in tests/bench/test_memory.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from distgan.families.bigvgan.generator import BigVGANGenerator
from distgan.inference.load import load_generator
from tests.train.helpers import (
    REPO_ROOT,
    checkpoints,
    local_logs,
    rank_state,
    run_distgan,
    scalars,
    train_args,
)

BIGVGAN_TINY = REPO_ROOT / "configs" / "bigvgan_tiny.yaml"
MODES = {"ddp": "cpu_ddp.yaml", "zero1": "cpu_zero1.yaml", "zero3": "cpu_zero3.yaml"}


@pytest.mark.slow
def test_tiny_bigvgan_trains_under_ddp_zero1_and_zero3(tmp_path: Path) -> None:
    first_losses = {}
    for mode, launch in MODES.items():
        run_dir = tmp_path / mode
        extra = ["model.generator.activation_checkpointing=true"] if mode == "zero3" else []
        run_distgan(train_args(run_dir, "train.max_steps=2", *extra, config=BIGVGAN_TINY), launcher=f"accelerate:{launch}")
        final = checkpoints(run_dir)[-1]
        assert rank_state(final, 0)["weights"] == rank_state(final, 1)["weights"], mode
        for rank in (0, 1):
            rows = local_logs(run_dir, rank)
            assert [row["step"] for row in rows] == [1, 2]
            assert all(torch.isfinite(torch.tensor(row[key])) for row in rows for key in ("d/total", "g/total"))
        first_losses[mode] = local_logs(run_dir, 0)[0]["g/total"]
    # Same seed, weights and batches in every mode: the losses before any update agree.
    assert first_losses["zero1"] == pytest.approx(first_losses["ddp"], rel=1e-5)
    assert first_losses["zero3"] == pytest.approx(first_losses["ddp"], rel=1e-5)
    # The ZeRO-3 checkpoint consolidates into a BigVGAN vocoder.
    vocoder = load_generator(tmp_path / "zero3")
    assert isinstance(vocoder.generator, BigVGANGenerator)
    assert vocoder(torch.zeros(1, 80, 4)).shape == (1, 4 * 256)


@pytest.mark.slow
def test_tiny_bigvgan_learns(tmp_path: Path) -> None:
    run_distgan(train_args(tmp_path, "train.max_steps=30", "log.val_every_steps=10", "log.val_metrics=[mrstft]",
                           "optim.generator.lr=1.0e-3", "optim.discriminator.lr=1.0e-3", config=BIGVGAN_TINY))
    values = scalars(tmp_path)

    def mean(tag: str, steps: range) -> float:
        return sum(values[tag][step] for step in steps) / len(steps)

    assert mean("g/mel", range(26, 31)) < 0.9 * mean("g/mel", range(1, 6))
    assert mean("d/total", range(26, 31)) < mean("d/total", range(1, 6))
    assert values["val/mel_l1"][30] < 0.9 * values["val/mel_l1"][10]
    assert values["val/mrstft"][30] < values["val/mrstft"][10]
