"""Partial decoding gives exactly the crop a whole decode would, for every format and path."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from distgan.data import audiofile
from distgan.data.stream.decode import decode_segment
from tests.data.shard_helpers import tone

SEGMENT = 1024


def _crop(data: bytes, meta: dict, seed: int, **options: object) -> np.ndarray:
    settings = dict(sample_rate=8000, segment_samples=SEGMENT, pad_short=False, silence_peak=1e-4)
    return decode_segment(data, meta, rng=np.random.default_rng(seed), **{**settings, **options})


@pytest.mark.parametrize(("fmt", "subtype", "channels"), [
    ("FLAC", "PCM_16", 2), ("WAV", "PCM_16", 1), ("WAV", "PCM_16", 3), ("WAV", "PCM_24", 2), ("WAV", "FLOAT", 1),
])
def test_partial_decode_equals_the_crop_of_a_whole_decode(fmt: str, subtype: str, channels: int,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    audio = np.stack([tone(20000, seed=c) for c in range(channels)], axis=1)
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, 8000, format=fmt, subtype=subtype)
    data = buffer.getvalue()
    assert (audiofile.Pcm16Wav.parse(data) is not None) == (fmt == "WAV" and subtype == "PCM_16")
    whole, _ = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    offset = int(np.random.default_rng(3).integers(0, 20000 - SEGMENT + 1))
    expected = whole[offset: offset + SEGMENT].mean(axis=1)

    fast = _crop(data, {"peak": 0.3}, seed=3)
    slow_path = _crop(data, {}, seed=3)  # no peak: the whole clip is decoded and checked
    # soundfile's public read(), with no shortcut for PCM-16 WAV
    monkeypatch.setattr(audiofile, "_LIBSNDFILE", None)
    monkeypatch.setattr(audiofile.Pcm16Wav, "parse", classmethod(lambda cls, data: None))
    public = _crop(data, {"peak": 0.3}, seed=3)
    for got in (fast, slow_path, public):
        assert got.dtype == np.float32 and got.shape == (SEGMENT,)
        np.testing.assert_array_equal(got, expected)


def test_offsets_follow_the_generator() -> None:
    buffer = io.BytesIO()
    soundfile.write(buffer, tone(20000, seed=1), 8000, format="FLAC")
    data = buffer.getvalue()
    assert np.array_equal(_crop(data, {"peak": 0.3}, seed=5), _crop(data, {"peak": 0.3}, seed=5))
    assert not np.array_equal(_crop(data, {"peak": 0.3}, seed=5), _crop(data, {"peak": 0.3}, seed=6))
