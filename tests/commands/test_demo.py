"""`distgan demo` runs end to end and says what it produced."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import soundfile

from tests.train.helpers import event_files, read_events, run_distgan


@pytest.mark.slow
def test_demo_writes_audio_and_logs(tmp_path: Path) -> None:
    run = tmp_path / "demo"
    done = run_distgan(["demo", "--run-dir", str(run), "--minutes", "0.25", "data.batch_size=2",
                        "data.segment_samples=4096", "log.val_metrics=[]"], timeout=300)
    generated = sorted((run / "samples").glob("*-generated-step*.wav"))
    assert len(generated) == 2 and len(list((run / "samples").glob("*-real.wav"))) == 2
    audio, rate = soundfile.read(generated[0])
    assert rate == 22050 and len(audio) > 22050 // 2
    assert len(event_files(run)) == 1
    assert f"tensorboard --logdir {tmp_path}" in done.stdout and '(the run is "demo/tensorboard")' in done.stdout
    # Validated by the clock, at least three times within the budget, whatever a step costs here.
    events = read_events(run)
    audio_steps = {event.step for tag in events.Tags()["audio"] if "generated" in tag for event in events.Audio(tag)}
    image_steps = {event.step for tag in events.Tags()["images"] if "generated" in tag
                   for event in events.Images(tag)}
    assert len(audio_steps) >= 3 and audio_steps == image_steps, (audio_steps, image_steps)
    steps = int(re.search(r"trained (\d+) steps", done.stdout).group(1))
    assert steps >= 1 and (run / "checkpoints" / f"step-{steps:08d}" / "COMPLETE").is_file()
    # The sample files and TensorBoard name the same step: the last validation is at the last step.
    assert {int(re.search(r"step(\d+)", p.name).group(1)) for p in generated} == {steps} == {max(audio_steps)}
    # Every step is logged, so the curves have as many points as steps.
    assert [e.step for e in events.Scalars("losses/g/mel")] == list(range(1, steps + 1))
