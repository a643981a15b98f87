"""configs/dac_tiny.yaml learns in one process, and its validation writes what a codec run is
watched by: mel distance, SI-SDR, bitrate and per-codebook usage at full and reduced counts,
reconstructed audio and spectrograms (read back from the event file).

The launch modes (DDP, ZeRO-1/2/3, resume bit for bit) are ``tests/train/test_family_launch.py``'s row.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from distgan.families.dac.objective import codebook_counts
from distgan.families.dac.validation import codebook_usage, si_sdr
from tests.train.helpers import REPO_ROOT, read_events, run_distgan, scalars, train_args

DAC_TINY = REPO_ROOT / "configs" / "dac_tiny.yaml"


@pytest.mark.slow
def test_tiny_codec_learns_and_validates_at_every_bitrate(tmp_path: Path) -> None:
    run_distgan(train_args(tmp_path, "train.max_steps=30", "log.val_every_steps=10", "log.every_steps=1",
                           "data.segment_samples=4096", "data.batch_size=2", "data.num_workers=0", config=DAC_TINY))
    values = scalars(tmp_path)

    def mean(tag: str, steps: range) -> float:
        return sum(values[tag][step] for step in steps) / len(steps)

    assert mean("g/mel", range(26, 31)) < mean("g/mel", range(1, 6))
    assert mean("d/total", range(26, 31)) < 0.8 * mean("d/total", range(1, 6))
    for term in ("g/commitment", "g/codebook", "g/adv", "g/fm"):
        assert all(math.isfinite(v) for v in values[term].values()), term
    assert values["val/mel_l1"][30] < values["val/mel_l1"][10]
    # 4 codebooks of 64 entries at 16 kHz / hop 32: 4 x 6 bits x 500 frames/s.
    assert values["val/kbps"][30] == pytest.approx(12.0)
    assert values["val/kbps@1q"][30] == pytest.approx(3.0) and values["val/kbps@2q"][30] == pytest.approx(6.0)
    for step in (10, 30):
        # Every count is scored (which count reconstructs best is not settled after 30 steps).
        for count in ("", "@1q", "@2q"):
            assert values[f"val/mel_l1{count}"][step] > 0 and math.isfinite(values[f"val/si_sdr{count}"][step])
        for i in range(4):
            assert 1.0 <= values[f"val/codebook{i}/perplexity"][step] <= 64.0
            assert 0.0 <= values[f"val/codebook{i}/dead"][step] < 1.0
    events = read_events(tmp_path)
    audio, images = events.Tags()["audio"], events.Tags()["images"]
    assert any(tag.endswith("/generated") for tag in audio) and any(tag.endswith("/real") for tag in audio)
    assert any(tag.endswith("/mel_generated") for tag in images)


def test_si_sdr_and_codebook_usage_measure_what_they_name() -> None:
    torch.manual_seed(0)
    real = torch.randn(16000)
    assert si_sdr(real, 0.5 * real) > 60  # scale-invariant: a scaled copy is perfect
    noisy = real + 0.1 * torch.randn(16000)
    assert si_sdr(real, noisy) == pytest.approx(20.0, abs=0.5)
    perplexity, dead = codebook_usage(torch.tensor([0, 1, 2, 3] * 5), 8)
    assert perplexity == pytest.approx(4.0) and dead == 0.5
    assert codebook_usage(torch.zeros(10, dtype=torch.long), 8) == (pytest.approx(1.0), 7 / 8)


def test_quantizer_dropout_draws_per_rank_and_step_and_again_on_resume() -> None:
    draw = lambda rank, step: codebook_counts(8, 9, 0.5, (1234, "quantizer_dropout", step, rank, 0))  # noqa: E731
    assert torch.equal(draw(0, 5), draw(0, 5))
    assert not torch.equal(draw(0, 5), draw(1, 5)) or not torch.equal(draw(0, 6), draw(1, 6))
    counts = draw(0, 5)
    assert (counts[4:] == 10).all() and ((counts[:4] >= 1) & (counts[:4] <= 9)).all()
    assert (codebook_counts(8, 9, 0.0, (0,)) == 10).all()
