"""Turning a sample's audio bytes into a training segment or a whole validation clip.

``decode_segment`` is where the stream wins its speed over file-list loaders: it reads the
header (rate, frames, channels), checks it, then seeks to a random offset and decodes only
``segment_samples`` frames (``audiofile.py``; PCM-16 WAV needs no decoder at all); a file-list
loader decodes the whole utterance to keep one segment of it. Silence is judged from the ``peak`` that ``distgan prepare`` stores in each
sample's JSON. Without a ``peak`` (shards written by other tools) the whole clip is decoded so
that silence and NaN/Inf anywhere in it are caught: correct, but as slow as a file-list loader.

With a ``peak``, NaN/Inf are caught inside the decoded segment (and a non-finite ``peak`` is
rejected before decoding); a clip with a few bad values elsewhere can slip through until a
later epoch crops them. ``prepare`` checks every clip whole, so this concerns foreign shards.

The json is optional: the audio header alone says rate, length and channels. When a json is
there, its ``sample_rate`` (or ``sampling_rate``, ``sr``: names other tools use), ``samples`` and
``channels`` must describe the audio member; a sample whose json describes other audio is not
trusted: it is skipped as ``metadata_mismatch``. Every problem raises ``BadSample`` with a
reason from ``SKIP_REASONS``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from distgan.data.audiofile import AudioFileError, Pcm16Wav, SoundFileReader, open_audio
from distgan.data.format import SILENCE_PEAK, is_audio_extension
from distgan.data.stream.skips import BadSample

# Audio extensions seen in WebDataset corpora that libsndfile does not decode: named in the
# skip message so that a corpus of them is told what to do.
UNDECODABLE_AUDIO = ("m4a", "aac", "mp4", "wma", "webm")


def find_audio(members: dict[str, bytes]) -> bytes:
    """The bytes of the sample's audio member; ``BadSample("no_audio")`` without one."""
    for ext, data in members.items():
        if is_audio_extension(ext):
            return data
    names = ", ".join(sorted(members)) or "none"
    if any(ext.lower().rsplit(".", 1)[-1] in UNDECODABLE_AUDIO for ext in members):
        names += " (soundfile cannot decode m4a/aac/mp4/wma/webm audio: convert it to flac, wav, ogg or mp3)"
    raise BadSample("no_audio", f"members: {names}")


def read_meta(members: dict[str, bytes]) -> dict[str, Any]:
    """The sample's JSON as a dict; missing or unparsable metadata is optional, so ``{}``."""
    raw = members.get("json")
    if raw is None:
        return {}
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


# Where a sample's text may be: json fields, then members, first found wins.
TEXT_FIELDS = ("text", "transcript", "transcription", "sentence")
TEXT_MEMBERS = ("txt", "text")


def read_text(members: dict[str, bytes], meta: dict[str, Any]) -> str | None:
    for name in TEXT_FIELDS:
        if isinstance(meta.get(name), str):
            return meta[name]
    raw = next((members[ext] for ext in TEXT_MEMBERS if ext in members), None)
    return raw.decode("utf-8", errors="replace").strip() if raw is not None else None


# The sample json's fields that describe the audio (the first name present counts), and the
# header's name for each.
_META_FIELDS = ((("sample_rate", "sampling_rate", "sr"), "samplerate"), (("samples",), "frames"),
                (("channels",), "channels"))


def _claimed(meta: dict[str, Any], names: tuple[str, ...]) -> int | None:
    """The json's whole-number value under the first of ``names`` it has (``22050.0`` counts)."""
    value = next((meta[name] for name in names if name in meta), None)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        return None
    return int(value)


def _open(audio: bytes, sample_rate: int, meta: dict[str, Any]) -> Pcm16Wav | SoundFileReader:
    try:
        reader = open_audio(audio)
    except AudioFileError as err:
        raise BadSample("decode_error", str(err)) from err
    for names, header in _META_FIELDS:
        claimed = _claimed(meta, names)
        if claimed is not None and claimed != getattr(reader, header):
            reader.close()
            field = next(name for name in names if name in meta)
            raise BadSample("metadata_mismatch", f"json {field}={claimed}, the audio has {getattr(reader, header)}")
    if reader.samplerate != sample_rate:
        reader.close()
        raise BadSample("wrong_sample_rate", f"{reader.samplerate} Hz, expected {sample_rate} Hz")
    if reader.frames <= 0:
        reader.close()
        raise BadSample("empty", "zero frames")
    return reader


def _read_mono(reader: Pcm16Wav | SoundFileReader, offset: int, count: int) -> np.ndarray:
    """``[count]`` float32 frames from ``offset``, channels averaged."""
    try:
        frames = reader.read(offset, count)
    except AudioFileError as err:
        raise BadSample("decode_error", str(err)) from err
    mono = frames[:, 0] if frames.shape[1] == 1 else frames.mean(axis=1)
    return np.ascontiguousarray(mono, dtype=np.float32)


def _check_finite(audio: np.ndarray) -> None:
    if not np.isfinite(audio).all():
        raise BadSample("non_finite", "NaN or Inf in the samples")


def decode_segment(
    audio: bytes,
    meta: dict[str, Any],
    *,
    sample_rate: int,
    segment_samples: int,
    pad_short: bool,
    silence_peak: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """A random ``[segment_samples]`` float32 crop of one clip (mono), or ``BadSample``.

    Exactly one offset is drawn from ``rng`` per clip that reaches the crop, so a worker's crops
    are reproducible. A clip shorter than a segment is zero-padded at the end when
    ``pad_short``, else skipped as ``too_short``.
    """
    reader = _open(audio, sample_rate, meta)
    try:
        frames = reader.frames
        if frames < segment_samples and not pad_short:
            raise BadSample("too_short", f"{frames} frames < segment of {segment_samples}")
        peak = meta.get("peak")
        if isinstance(peak, (int, float)) and not isinstance(peak, bool):
            if not math.isfinite(peak):
                raise BadSample("non_finite", f"peak {peak}")
            if peak < silence_peak:
                raise BadSample("silent", f"peak {peak:.3g} < {silence_peak:.3g}")
            offset = int(rng.integers(0, max(frames - segment_samples, 0) + 1))
            segment = _read_mono(reader, offset, min(segment_samples, frames))
            _check_finite(segment)
        else:
            # Slow path for foreign shards: the whole clip, to judge silence and finiteness.
            clip = _read_mono(reader, 0, frames)
            _check_finite(clip)
            if float(np.abs(clip).max()) < silence_peak:
                raise BadSample("silent", f"peak {float(np.abs(clip).max()):.3g} < {silence_peak:.3g}")
            offset = int(rng.integers(0, max(frames - segment_samples, 0) + 1))
            segment = clip[offset: offset + segment_samples]
    finally:
        reader.close()
    if segment.shape[0] < segment_samples:
        segment = np.pad(segment, (0, segment_samples - segment.shape[0]))
    return segment


def decode_clip(audio: bytes, meta: dict[str, Any], *, sample_rate: int,
                silence_peak: float = SILENCE_PEAK) -> np.ndarray:
    """A whole clip as mono float32 ``[T]`` (validation), rejecting what training would reject."""
    reader = _open(audio, sample_rate, meta)
    try:
        clip = _read_mono(reader, 0, reader.frames)
    finally:
        reader.close()
    _check_finite(clip)
    if float(np.abs(clip).max()) < silence_peak:
        raise BadSample("silent", f"peak {float(np.abs(clip).max()):.3g} < {silence_peak:.3g}")
    return clip
