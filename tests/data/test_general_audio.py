"""A codec trains on any audio distgan reads, not only speech: a WebDataset shard of noise, chords,
chirps and clicks as bare ``.flac`` members (no json, no transcript, no speaker; one clip stereo)
streams with nothing skipped, and the tiny DAC codec trains on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from distgan.data.shards import resolve_shards
from distgan.data.stream import TrainStream
from tests.data.shard_helpers import encode, write_shard
from tests.train.helpers import REPO_ROOT, local_logs, run_distgan, train_args

RATE = 16000  # configs/dac_tiny.yaml's
SEGMENT = 4096  # tests.train.helpers.FAST's


def general_audio(seconds: float = 0.75) -> dict[str, np.ndarray]:
    """Non-speech clips ``[T]`` or ``[T, 2]`` (float32, peak below 1), by name."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * RATE)) / RATE
    clicks = np.zeros_like(t)
    clicks[:: RATE // 20] = 0.9  # a 20 Hz click train
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0, 1244.5)) / 5
    clips = {
        "white_noise": 0.3 * rng.standard_normal(t.size),
        "chord": chord,
        "chirp": 0.5 * np.sin(2 * np.pi * (50 * t + 0.5 * 7000 / seconds * t**2)),  # 50 Hz -> 7 kHz
        "clicks": clicks,
        "stereo_drone": np.stack([0.4 * np.sin(2 * np.pi * 55 * t), 0.2 * rng.standard_normal(t.size)], axis=1),
    }
    return {name: np.clip(audio, -0.99, 0.99).astype(np.float32) for name, audio in clips.items()}


@pytest.fixture(scope="module")
def shard_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("general")
    # Only "__key__" and "flac": nothing but the audio itself.
    write_shard(folder / "sounds-000000.tar",
                [{"__key__": name.encode(), "flac": encode(audio, RATE)} for name, audio in general_audio().items()])
    return folder


def test_bare_non_speech_clips_stream_with_nothing_skipped(shard_folder: Path) -> None:
    stream = TrainStream(resolve_shards(str(shard_folder)), sample_rate=RATE, segment_samples=SEGMENT,
                         batch_size=len(general_audio()), rank=0, world_size=1, seed=0, with_keys=True)
    (batch,) = list(stream)
    assert sorted(batch["keys"]) == sorted(general_audio()) and batch["skips"].sum() == 0
    assert batch["audio"].shape == (len(general_audio()), SEGMENT) and bool((batch["audio"].abs().amax(1) > 0.05).all())


@pytest.mark.slow
def test_the_tiny_codec_trains_on_a_shard_of_bare_non_speech_clips(shard_folder: Path, tmp_path: Path) -> None:
    done = run_distgan(train_args(tmp_path / "run", f"data.shards={shard_folder}", "train.max_steps=2",
                                  config=REPO_ROOT / "configs" / "dac_tiny.yaml"))
    assert "done at step 2" in done.stdout
    logs = local_logs(tmp_path / "run")
    assert [row["step"] for row in logs] == [1, 2]
    assert all(np.isfinite(row["g/total"]) and row["g/codebook"] > 0 for row in logs)
