"""`distgan demo` runs end to end and says what it produced."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import soundfile

from tests.train.helpers import event_files, run_distgan


@pytest.mark.slow
def test_demo_writes_audio_and_logs(tmp_path: Path) -> None:
    run = tmp_path / "demo"
    done = run_distgan(["demo", "--run-dir", str(run), "--minutes", "0.05", "data.batch_size=2",
                        "data.segment_samples=4096", "log.val_metrics=[]"], timeout=300)
    generated = sorted((run / "samples").glob("*-generated-step*.wav"))
    assert len(generated) == 2 and len(list((run / "samples").glob("*-real.wav"))) == 2
    audio, rate = soundfile.read(generated[0])
    assert rate == 22050 and len(audio) > 22050 // 2
    assert len(event_files(run)) == 1
    assert f"tensorboard --logdir {run / 'tensorboard'}" in done.stdout
    steps = int(re.search(r"trained (\d+) steps", done.stdout).group(1))
    assert steps >= 1 and (run / "checkpoints" / f"step-{steps:08d}" / "COMPLETE").is_file()
