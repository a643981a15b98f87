"""Train configs/tiny.yaml briefly, export it, synthesize a clip and evaluate it, as a user would;
every file each command writes is checked, and TensorBoard has the validation quality metrics."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import soundfile
import yaml

from tests.inference.helpers import HOP_LENGTH, SAMPLE_RATE, synthetic_corpus, val_clips
from tests.train.helpers import checkpoints, read_events, run_distgan, scalars, train_args

VAL_METRICS = ["mrstft", "pesq", "stoi"]
STEPS = 4


@pytest.mark.slow
def test_train_export_synthesize_evaluate(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_distgan(train_args(run, f"train.max_steps={STEPS}", "log.val_every_steps=2", "log.val_clips=2",
                           f"log.val_metrics=[{','.join(VAL_METRICS)}]"))
    assert [path.name for path in checkpoints(run)] == [f"step-{STEPS:08d}"]
    values = scalars(run)
    for name in ["mel_l1", *VAL_METRICS]:
        assert sorted(values[f"val/{name}"]) == [2, 4], name
        assert all(math.isfinite(v) for v in values[f"val/{name}"].values()), name
    assert all(1.0 <= v <= 4.65 for v in values["val/pesq"].values())
    assert all(-1.0 <= v <= 1.0 for v in values["val/stoi"].values())
    assert all(v > 0 for v in values["val/mrstft"].values())
    tags = read_events(run).Tags()
    assert len([tag for tag in tags["audio"] if tag.endswith("/generated")]) == 2
    assert len([tag for tag in tags["images"] if tag.endswith("/mel_generated")]) == 2

    model = tmp_path / "export" / "tiny.safetensors"
    run_distgan(["export", str(run), str(model)])
    assert model.stat().st_size > 100_000
    assert yaml.safe_load(model.with_suffix(".yaml").read_text())["step"] == STEPS

    key, wave = next(iter(val_clips().items()))
    source = tmp_path / "in" / f"{key}.wav"
    source.parent.mkdir()
    soundfile.write(source, wave.numpy(), SAMPLE_RATE, subtype="PCM_16")
    done = run_distgan(["synthesize", "--checkpoint", str(model), str(source), "--out", str(tmp_path / "out")])
    assert "real-time factor" in done.stdout
    info = soundfile.info(str(tmp_path / "out" / f"{key}.wav"))
    assert (info.samplerate, info.channels) == (SAMPLE_RATE, 1)
    assert info.frames == len(wave) // HOP_LENGTH * HOP_LENGTH

    scores = tmp_path / "scores.csv"
    done = run_distgan(["evaluate", "--checkpoint", str(model), str(synthetic_corpus()),
                        "--metrics", "mel_l1", *VAL_METRICS, "--out", str(scores)])
    with open(scores, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == ["key", "seconds", "mel_l1", *VAL_METRICS]
    assert [row["key"] for row in rows] == sorted(val_clips())
    assert all(math.isfinite(float(row[name])) for row in rows for name in ["mel_l1", *VAL_METRICS])
    summary = done.stdout.splitlines()
    assert summary[0].startswith(f"{len(rows)} utterances")
    assert [line.split()[0] for line in summary[2:6]] == ["mel_l1", *VAL_METRICS]
    # The trainer's last validation scored the first two of these clips with the same weights.
    for name in ["mel_l1", "mrstft", "stoi"]:
        offline = sum(float(row[name]) for row in rows[:2]) / 2
        assert offline == pytest.approx(values[f"val/{name}"][STEPS], rel=1e-3), name
