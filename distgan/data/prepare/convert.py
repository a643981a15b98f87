"""From one input clip (a file, or a synthesized utterance) to the tar members of one shard sample.

Every check the stream would otherwise make on each epoch happens here once, on the whole clip:
empty, non-finite (NaN/Inf) and silent audio is refused with a reason instead of being written.
The audio is quantised to PCM-16 here too, so that the ``peak`` stored in the JSON is exactly the
peak the stream decodes (``soundfile`` reads PCM-16 as ``int / 32768``).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol

import numpy as np
import soundfile

from distgan.data.audiofile import SOUNDFILE_ERRORS
from distgan.data.format import SILENCE_PEAK
from distgan.data.prepare.options import PrepareOptions

PCM16_SCALE = 32768
# torchaudio's loudness (ITU-R BS.1770) gates in 400 ms blocks; shorter clips have none.
LOUDNESS_MIN_SECONDS = 0.4


class ClipError(Exception):
    """A clip that cannot be written; the message becomes the ``reason`` in ``index.json``."""


class ClipJob(Protocol):
    """One input clip, picklable so that worker processes can load and convert it.

    ``path`` names the input in failure reports, ``source`` goes into the sample's JSON.
    """

    key: str
    path: str
    source: str
    speaker: str | None
    text: str | None
    text_raw: str | None

    def load(self) -> tuple[np.ndarray, int]:
        """The audio as float32 ``[frames, channels]`` and its sample rate; raises ``ClipError``."""
        ...


@dataclass(frozen=True)
class Clip:
    """A converted clip: ``members`` maps extensions (``flac``/``wav``, ``json``, ``txt``) to bytes."""

    key: str
    members: dict[str, bytes]
    samples: int
    seconds: float


@dataclass(frozen=True)
class Failure:
    path: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


def read_audio_file(path: str) -> tuple[np.ndarray, int]:
    """Decode any file libsndfile reads to float32 ``[frames, channels]``; ``ClipError`` otherwise."""
    try:
        if os.path.getsize(path) == 0:
            raise ClipError("empty file (0 bytes)")
        # As bytes: a file name that is not UTF-8 (Python holds it with surrogates) stays openable.
        audio, rate = soundfile.read(os.fsencode(path), dtype="float32", always_2d=True)
    except SOUNDFILE_ERRORS as err:
        raise ClipError(f"unreadable: {type(err).__name__}: {err}") from err
    return audio, int(rate)


def convert(job: ClipJob, options: PrepareOptions) -> Clip | Failure:
    """Load, check, mix down, resample, normalise and encode one clip (``options.sample_rate`` set)."""
    assert options.sample_rate is not None, "resolve the sample rate before converting"
    try:
        audio, rate = job.load()
        pcm = condition(audio, rate, options)
    except ClipError as err:
        return Failure(job.path, str(err))
    return encode(job, pcm, options.sample_rate, options.audio_format)


def condition(audio: np.ndarray, rate: int, options: PrepareOptions) -> np.ndarray:
    """``[frames, channels]`` float at ``rate`` -> int16 ``[frames']`` at ``options.sample_rate``.

    Order: checks, mix-down (channel mean), resampling, gain, PCM-16 rounding. Silence is judged
    before any gain, so normalisation cannot turn a near-silent file into loud noise. Values
    beyond full scale (float sources with ``--normalize none``) are clipped.
    """
    if audio.shape[0] == 0:
        raise ClipError("empty: no audio frames")
    if not np.isfinite(audio).all():
        raise ClipError("non-finite samples (NaN or Inf)")
    channels = audio.shape[1]
    if channels > 1 and not options.mono:
        raise ClipError(f"{channels} channels; shards hold mono audio, so pass --mono to mix down")
    mono = audio.mean(axis=1, dtype=np.float64) if channels > 1 else audio[:, 0].astype(np.float64)
    peak = float(np.abs(mono).max())
    if peak < SILENCE_PEAK:
        raise ClipError(f"silent: peak {_dbfs(peak)} is below {_dbfs(SILENCE_PEAK)}")
    assert options.sample_rate is not None
    if rate != options.sample_rate:
        mono = resample(mono, rate, options.sample_rate)
    mono = mono * normalization_gain(mono, options)
    return np.clip(np.round(mono * PCM16_SCALE), -PCM16_SCALE, PCM16_SCALE - 1).astype(np.int16)


def resample(audio: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """``[frames]`` at ``rate`` -> ``[ceil(frames * target_rate / rate)]`` (torchaudio's sinc filter)."""
    import torchaudio.functional

    with _torch_one_thread() as torch:
        tensor = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
        return torchaudio.functional.resample(tensor, rate, target_rate).numpy().astype(np.float64)


def normalization_gain(audio: np.ndarray, options: PrepareOptions) -> float:
    """The gain for ``--normalize``. Loudness gain is capped so the peak stays at ``--peak-db``."""
    if options.normalize == "none":
        return 1.0
    peak = float(np.abs(audio).max())
    ceiling = 10.0 ** (options.peak_db / 20.0)
    if options.normalize == "peak":
        return ceiling / peak
    if len(audio) < LOUDNESS_MIN_SECONDS * options.sample_rate:
        raise ClipError(f"too short to measure loudness (under {LOUDNESS_MIN_SECONDS * 1000:.0f} ms)")
    import torchaudio.functional

    with _torch_one_thread() as torch:
        tensor = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
        lufs = float(torchaudio.functional.loudness(tensor, options.sample_rate))
    if not np.isfinite(lufs):
        raise ClipError("loudness undefined (every 400 ms block is below the -70 LUFS gate)")
    return min(10.0 ** ((options.loudness_lufs - lufs) / 20.0), ceiling / peak)


def encode(job: ClipJob, pcm: np.ndarray, sample_rate: int, audio_format: str) -> Clip:
    """The sample's members: PCM-16 ``flac`` or ``wav``, the ``json`` and, with text, the ``txt``."""
    buffer = io.BytesIO()
    soundfile.write(buffer, pcm, sample_rate, format=audio_format.upper(), subtype="PCM_16")
    samples = len(pcm)
    meta: dict[str, object] = {
        "key": job.key,
        "sample_rate": sample_rate,
        "samples": samples,
        "duration": samples / sample_rate,
        "channels": 1,
        "speaker": job.speaker,
        "source": job.source,
        **({"source_bytes": job.source_bytes} if getattr(job, "source_bytes", None) else {}),
        "peak": float(np.abs(pcm.astype(np.int32)).max()) / PCM16_SCALE,
    }
    members = {audio_format: buffer.getvalue()}
    if job.text is not None:
        meta["text"] = job.text
        if job.text_raw is not None:
            meta["text_raw"] = job.text_raw
        members["txt"] = job.text.encode("utf-8")
    members["json"] = json.dumps(meta, ensure_ascii=False).encode("utf-8")
    return Clip(job.key, members, samples, samples / sample_rate)


@contextmanager
def _torch_one_thread() -> Iterator[ModuleType]:
    """Torch, limited to one intra-op thread while a clip is processed, then restored.

    A clip is too small for thread parallelism to pay: on busy cores a 7 s resample took 0.25 s
    with two threads and 7 ms with one. Worker processes are the parallelism. torch is imported
    here, not at the top, because the synthetic corpus and ``--help`` never need it.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield torch
    finally:
        torch.set_num_threads(before)


def _dbfs(value: float) -> str:
    return f"{20 * np.log10(max(value, 1e-12)):.1f} dBFS"
