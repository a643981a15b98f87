"""``distgan bench step --baseline reference``: the original code's step computes what distgan's step
computes from the same weights and batch, the comparison runs both sides, and a config the
original code cannot build is refused by name."""

from __future__ import annotations

import contextlib

import pytest
import torch

from distgan.config import load_config
from distgan.families import build_generator
from distgan.losses.mel import MelSpectrogram
from distgan.models.build import build_discriminators
from distgan.train.engine import build_engines
from distgan.train.step import GANStep
from tests.train.helpers import FAST, REPO_ROOT, TINY

pytest.importorskip("bigvgan.bigvgan", reason="the bigvgan reference package is not installed")
pytest.importorskip("nnAudio", reason="BigVGAN's CQT discriminator needs nnAudio")
pytestmark = [pytest.mark.filterwarnings("ignore:.*torch.nn.utils.weight_norm.* is deprecated:FutureWarning")]

# configs/bigvgan_tiny.yaml at its smallest: one AMP kernel, one period at 1/32 of NVIDIA's MPD
# widths (its discriminator_channel_mult), one CQT sub-discriminator.
SMALL_BIGVGAN = [*FAST, "data.batch_size=1", "data.segment_samples=2048",
                 "model.generator.upsample_initial_channel=16", "model.generator.resblock_kernel_sizes=[3]",
                 "model.generator.resblock_dilation_sizes=[[1,3]]", "model.discriminator.periods=[2]",
                 "model.discriminator.mpd_channels=[1,4,16,32,32]", "model.discriminator.cqtd_hop_lengths=[256]",
                 "model.discriminator.cqtd_n_octaves=[7]", "model.discriminator.cqtd_bins_per_octaves=[12]"]


def _config():
    return load_config(REPO_ROOT / "configs" / "bigvgan_tiny.yaml", SMALL_BIGVGAN)


def test_the_original_step_and_distgans_agree_on_the_first_step() -> None:
    from distgan.bench.reference_step import ReferenceStep, build_models, copy_weights_into

    cfg = _config()
    torch.manual_seed(0)
    generator = build_generator(cfg.model.generator, cfg.audio)
    discriminator = build_discriminators(cfg.model.discriminator, cfg.audio.sample_rate)
    reference_g, reference_d = build_models(cfg)
    copy_weights_into(generator, discriminator, reference_g, reference_d)
    g, d, info = build_engines(cfg, generator, discriminator)
    ours = GANStep(cfg, g, d, info, MelSpectrogram(cfg.audio), MelSpectrogram.for_loss(cfg.audio),
                   lambda _: contextlib.nullcontext(), lambda _: None)
    wave = 0.3 * torch.randn(1, 2048, generator=torch.Generator().manual_seed(1))
    reference = ReferenceStep(cfg, reference_g, reference_d, torch.device("cpu"))
    theirs = reference(reference.prepare(wave))
    values, _ = ours([wave], 0)
    # D's loss before any update, and G's mel loss of the same generated audio.
    assert float(theirs["d/total"]) == pytest.approx(float(values["d/total"]), rel=1e-4)
    assert float(theirs["g/mel"]) == pytest.approx(float(values["g/mel"]), rel=1e-4)
    # G's total goes through D after its update: equal only if both D updates were the same.
    assert float(theirs["g/total"]) == pytest.approx(float(values["g/total"]), rel=1e-3)


def test_the_gpu_table_dry_run_times_both_sides(capsys: pytest.CaptureFixture) -> None:
    """``distgan bench gpu --dry-run`` (``launch/gpu_bench.sh``'s code path): a row with both sides and their ratio."""
    from distgan import cli

    assert cli.main(["bench", "gpu", "--dry-run", "--models", "bigvgan", "--variants", "fp32"]) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1].split()
    assert row[:2] == ["BigVGAN-v2", "fp32"], row
    original, ours, ratio = float(row[2]), float(row[3]), float(row[4].rstrip("x"))
    assert original > 0 and ours > 0 and ratio == pytest.approx(ours / original, rel=0.02)
    assert row[-2] == f"{ratio:.2f}x"  # its own fp32 row is the fp32 original
    assert row[-1] == "-"  # synchronising CUDA calls: counted on a GPU only


def test_a_config_the_original_cannot_build_is_refused_naming_field_and_values() -> None:
    from distgan.bench.reference_step import ReferenceMismatch, check_config

    with pytest.raises(ReferenceMismatch, match=r"model\.discriminator\.periods is \[2, 3, 5\], the original "
                                                r"code has \[2, 3, 5, 7, 11\]"):
        check_config(load_config(TINY, []))
    with pytest.raises(ReferenceMismatch, match=r"mpd_channels is \[8, 16, 32, 32\]"):
        check_config(load_config(REPO_ROOT / "configs" / "bigvgan_tiny.yaml", []))
    check_config(load_config(REPO_ROOT / "configs" / "hifigan_v1.yaml", []))


def test_the_profile_splits_each_sides_step_and_counts_the_originals_extra_convolutions() -> None:
    """``--profile``: the classes cover the step, and the original's convolutions do more arithmetic
    (its G update also computes D's weight gradients, which distgan's frozen D skips)."""
    from distgan.bench.step import bench_against_reference, sample_batches

    cfg = load_config(REPO_ROOT / "configs" / "bigvgan_tiny.yaml", [*SMALL_BIGVGAN, "train.max_steps=3"])
    found = bench_against_reference(cfg, steps=1, warmup=1, rounds=1, batches=sample_batches(cfg, 1), profile=True)
    ours, theirs = found["distgan"]["profile"], found["reference"]["profile"]
    for side in (ours, theirs):
        assert sum(side.shares.values()) == pytest.approx(1.0)
        assert 0 < side.shares["convolution"] < 1 and side.conv_rate > 0 and side.top
    assert theirs.conv_gflop > 1.2 * ours.conv_gflop


def test_profile_without_the_reference_baseline_is_refused(capsys: pytest.CaptureFixture) -> None:
    from distgan import cli

    assert cli.main(["bench", "step", "--config", str(TINY), "--profile"]) == 2
    assert "--profile needs --baseline reference" in capsys.readouterr().err
