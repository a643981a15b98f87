"""Single-process training: it learns, it logs what a person needs, every precision mode runs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from distgan.data.prepare import PrepareOptions, prepare_corpus
from tests.conftest import LJSPEECH_MINI
from tests.train.helpers import local_logs, read_events, run_distgan, scalars, train_args

LOSS_TAGS = {"d/real", "d/fake", "d/total", "g/adv", "g/fm", "g/mel", "g/total"}
OTHER_TAGS = {"grad_norm/g", "grad_norm/d", "lr/g", "lr/d", "perf/steps_per_second",
              "perf/audio_seconds_per_second", "perf/data_wait_fraction", "perf/peak_memory_mb",
              "data/skipped", "skipped_updates/total", "val/mel_l1"}
# Running totals that stay zero in a healthy run: in the totals above, not on cards of their own.
ZERO_COUNTERS = {"skipped_updates/g", "skipped_updates/d", "data_skips/decode_error", "data_skips/refilled"}


@pytest.fixture(scope="module")
def speech_shards(tmp_path_factory: pytest.TempPathFactory) -> str | None:
    """ljspeech-mini as shards with 2 held-out clips, or None (synthetic corpus) without ../shared."""
    if not (LJSPEECH_MINI / "metadata.csv").is_file():
        return None
    out = tmp_path_factory.mktemp("ljspeech-shards")
    prepare_corpus(LJSPEECH_MINI, out, PrepareOptions(val_count=2, progress=False))
    return str(out)


@pytest.mark.slow
def test_tiny_learns_and_logs_everything(speech_shards: str | None, tmp_path: Path) -> None:
    run = tmp_path / "run"
    data = [f"data.shards={speech_shards}"] if speech_shards else []
    run_distgan(train_args(run, "train.max_steps=60", "data.batch_size=4", "log.val_every_steps=30",
                           "log.val_clips=2", "log.val_metrics=[]", *data), timeout=600)
    values = scalars(run)
    assert LOSS_TAGS | OTHER_TAGS <= set(values), sorted(LOSS_TAGS | OTHER_TAGS - set(values))
    assert not ZERO_COUNTERS & set(values) and set(values["data/skipped"].values()) == {0.0}
    mel = [values["g/mel"][step] for step in sorted(values["g/mel"])]
    assert len(mel) == 60 and all(math.isfinite(v) for v in mel)
    first, last = sum(mel[:3]) / 3, sum(mel[-5:]) / 5
    # From PyTorch's default initialisation (the reference's), 60 steps take it down by about a third.
    assert last < 0.8 * first, f"mel L1 did not fall clearly: {first:.3f} -> {last:.3f}"
    assert sorted(values["val/mel_l1"]) == [30, 60]
    events = read_events(run)
    audio, images = events.Tags()["audio"], events.Tags()["images"]
    assert len([t for t in audio if t.endswith("/real")]) == 2
    assert len([t for t in audio if t.endswith("/generated")]) == 2
    assert len([t for t in images if t.endswith("/mel_generated")]) == 2
    generated = events.Audio(next(t for t in audio if t.endswith("/generated")))
    assert [e.step for e in generated] == [30, 60] and generated[0].sample_rate == 22050
    assert values["perf/audio_seconds_per_second"][60] > 0
    assert 0 <= values["perf/data_wait_fraction"][60] < 1


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_each_precision_mode_trains(precision: str, tmp_path: Path) -> None:
    # fp16 runs on CPU too: distgan owns autocast and one GradScaler per model outside DeepSpeed.
    run_distgan(train_args(tmp_path, "train.max_steps=2", f"train.precision={precision}"))
    logs = local_logs(tmp_path)
    assert [row["step"] for row in logs] == [1, 2]
    assert all(math.isfinite(row["g/total"]) and math.isfinite(row["d/total"]) for row in logs)
    if precision == "fp16":
        assert logs[-1]["loss_scale/g"] > 1 and logs[-1]["loss_scale/d"] > 1
    else:
        assert "loss_scale/g" not in logs[-1]


def test_loop_options_shape_the_updates(tmp_path: Path) -> None:
    # Two mel-only steps (no D, no adversarial terms), then D every step and G every second step,
    # two batches per update, gradients clipped.
    run_distgan(train_args(tmp_path, "train.max_steps=6", "train.mel_only_steps=2", "train.d_steps_per_g=2",
                           "train.grad_accum=2", "optim.generator.grad_clip=1.0", "optim.discriminator.grad_clip=1.0"))
    rows = {row["step"]: row for row in local_logs(tmp_path)}
    for step in (1, 2):
        assert "d/total" not in rows[step] and "g/adv" not in rows[step] and "g/mel" in rows[step]
    for step in (3, 4, 5, 6):
        assert "d/total" in rows[step]
    # Steps are 0-based inside the loop: G updates at steps 2 and 4, logged as 3 and 5.
    assert [step for step in (3, 4, 5, 6) if "g/total" in rows[step]] == [3, 5]
    state = torch.load(sorted((tmp_path / "checkpoints").glob("step-*"))[-1] / "trainer.pt", weights_only=False)["state"]
    # 6 steps x 2 batches over the synthetic corpus's 22 batches an epoch (batch 2).
    assert (state["epoch"], state["batch_in_epoch"]) == (0, 12)
