"""The tiny WaveGAN recipe on ljspeech-mini at 16 kHz, one process: ``val/frechet_mel`` falls from
its value before the first step, validation writes clips and mel images, and ``distgan sample``
writes clips from the run's checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from distgan.cli import _parse
from distgan.commands import sample
from distgan.data.prepare import PrepareOptions, prepare_corpus
from distgan.inference.export import export_generator
from tests.conftest import LJSPEECH_MINI
from tests.train.helpers import REPO_ROOT, read_events, run_distgan, scalars, train_args

WAVEGAN_TINY = REPO_ROOT / "configs" / "wavegan_tiny.yaml"
STEPS = 120


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (LJSPEECH_MINI / "metadata.csv").is_file():
        pytest.skip("../shared/data/ljspeech-mini is not present (fresh clone)")
    shards = tmp_path_factory.mktemp("ljs16")
    prepare_corpus(LJSPEECH_MINI, shards, PrepareOptions(sample_rate=16000, progress=False))  # 4 held-out clips
    run = tmp_path_factory.mktemp("wavegan") / "run"
    run_distgan(train_args(run, f"data.shards={shards}", f"train.max_steps={STEPS}", "data.batch_size=8",
                           f"log.val_every_steps={STEPS}", "log.val_clips=2", "log.val_generated_clips=16",
                           config=WAVEGAN_TINY), timeout=600)
    return run


@pytest.mark.slow
def test_frechet_mel_falls_from_its_step_zero_value(tiny_run: Path) -> None:
    values = scalars(tiny_run)
    frechet, spread = values["val/frechet_mel"], values["val/pairwise_distance_ratio"]
    assert sorted(frechet) == sorted(spread) == [0, STEPS]
    # From loud white-ish noise towards speech's level and spectral tilt (about 650 -> 530 here).
    assert frechet[STEPS] < 0.9 * frechet[0], frechet
    assert 0 < spread[STEPS] < 2
    events = read_events(tiny_run)
    audio, images = events.Tags()["audio"], events.Tags()["images"]
    assert sorted(t for t in audio if t.startswith("val/generated")) == ["val/generated_0", "val/generated_1"]
    assert sorted(t for t in images if t.startswith("val/generated")) == ["val/generated_0/mel", "val/generated_1/mel"]
    assert [e.step for e in events.Audio("val/generated_0")] == [0, STEPS]
    assert [e.step for e in events.Audio("val/real_0")] == [0]  # real pieces once
    assert events.Audio("val/generated_0")[0].sample_rate == 16000


@pytest.mark.slow
def test_sample_writes_clips_from_noise(tiny_run: Path, tmp_path: Path, capsys) -> None:
    def run(out: Path, seed: int) -> list[np.ndarray]:
        args = _parse(("sample",), ["--checkpoint", str(tiny_run), "-n", "3", "--out", str(out), "--seed", str(seed)])
        assert sample.main(args) == 0
        clips = []
        for i in range(3):
            wave, rate = soundfile.read(out / f"sample-{i:04d}.wav", dtype="float32")
            assert rate == 16000 and wave.shape == (4096,)
            clips.append(wave)
        return clips

    first, again, other = run(tmp_path / "a", 5), run(tmp_path / "b", 5), run(tmp_path / "c", 6)
    assert f"wrote 3 clips of 0.26 s (16000 Hz) to {tmp_path / 'a'}, from the generator at step {STEPS}" in capsys.readouterr().out
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))  # same seed, same clips
    assert not np.array_equal(first[0], other[0]) and not np.array_equal(first[0], first[1])
    assert all(0.001 < np.sqrt(np.mean(clip**2)) < 1 for clip in first)
    with pytest.raises(ValueError, match="is a wavegan run: its generator turns noise into audio"):
        export_generator(tiny_run, tmp_path / "g.safetensors")  # and so does distgan synthesize
