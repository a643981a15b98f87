"""Random access to the frames of one in-memory audio file, as cheaply as each format allows.

``open_audio(data)`` returns a reader with ``samplerate``, ``frames``, ``channels`` and
``read(offset, count) -> float32 [count, channels]``:

- plain PCM-16 WAV (what ``distgan prepare --format wav`` writes) is read straight out of the
  bytes with ``numpy.frombuffer``: a segment costs a slice and a conversion, no decoder at all;
- anything else (FLAC, float or 24-bit WAV, ...) goes through libsndfile via ``soundfile``.

Both give identical values (PCM-16 scaled by 1/32768, as libsndfile does), which a test checks.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
import soundfile

from distgan.data.format import is_audio_extension

# What soundfile raises for unreadable input (libsndfile errors are RuntimeErrors).
SOUNDFILE_ERRORS = (RuntimeError, ValueError, TypeError, OSError, EOFError)
_PCM = 1
_EXTENSIBLE = 0xFFFE
# libsndfile's C functions as soundfile loads them (private names; None if a version lacks them).
_LIBSNDFILE = (
    (soundfile._snd, soundfile._ffi)
    if hasattr(soundfile, "_snd") and hasattr(soundfile, "_ffi") and hasattr(soundfile.SoundFile, "_file")
    else None
)


class AudioFileError(Exception):
    """The bytes are not audio that can be read (unknown format, corrupt, truncated)."""


class Pcm16Wav:
    """A little-endian PCM-16 WAV held in memory; ``parse`` returns None for any other file."""

    def __init__(self, data: bytes, samplerate: int, channels: int, data_offset: int, frames: int) -> None:
        self.data, self.samplerate, self.channels = data, samplerate, channels
        self.data_offset, self.frames = data_offset, frames

    @classmethod
    def parse(cls, data: bytes) -> Pcm16Wav | None:
        if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
            return None
        position, layout = 12, None
        while position + 8 <= len(data):
            chunk, size = data[position: position + 4], int.from_bytes(data[position + 4: position + 8], "little")
            body = position + 8
            if chunk == b"fmt " and 16 <= size <= len(data) - body:
                tag, channels, rate = struct.unpack_from("<HHI", data, body)
                bits = struct.unpack_from("<H", data, body + 14)[0]
                if tag == _EXTENSIBLE and size >= 40:
                    tag = struct.unpack_from("<H", data, body + 24)[0]  # the sub-format's first field
                if tag != _PCM or bits != 16 or channels < 1:
                    return None
                layout = (rate, channels)
            elif chunk == b"data":
                if layout is None or size > len(data) - body:
                    return None  # odd or truncated: libsndfile decides what to make of it
                return cls(data, layout[0], layout[1], body, size // (2 * layout[1]))
            position = body + size + (size & 1)
        return None

    def read(self, offset: int, count: int) -> np.ndarray:
        if offset < 0 or offset + count > self.frames:
            raise AudioFileError(f"frames {offset}..{offset + count} outside {self.frames}")
        pcm = np.frombuffer(self.data, dtype="<i2", count=count * self.channels,
                            offset=self.data_offset + 2 * self.channels * offset)
        return (pcm.astype(np.float32) * np.float32(1 / 32768)).reshape(count, self.channels)

    def close(self) -> None:
        self.data = b""


class SoundFileReader:
    """Any format libsndfile reads, from memory."""

    def __init__(self, data: bytes) -> None:
        try:
            self.handle = soundfile.SoundFile(io.BytesIO(data))
        except SOUNDFILE_ERRORS as err:
            raise AudioFileError(f"{type(err).__name__}: {err}") from err
        self.samplerate, self.frames, self.channels = self.handle.samplerate, self.handle.frames, self.handle.channels

    def read(self, offset: int, count: int) -> np.ndarray:
        out = np.empty((count, self.channels), dtype=np.float32)
        try:
            self.handle.seek(offset)
            if _LIBSNDFILE is not None:
                # soundfile's read() asks for the position and seeks back to it after every
                # read; on FLAC that costs a quarter of decoding a segment. libsndfile's own
                # read call, which soundfile wraps, does not need it.
                lib, ffi = _LIBSNDFILE
                got = lib.sf_readf_float(self.handle._file, ffi.cast("float *", out.ctypes.data), count)
            else:
                got = self.handle.read(count, dtype="float32", always_2d=True, out=out).shape[0]
        except SOUNDFILE_ERRORS as err:
            raise AudioFileError(f"{type(err).__name__}: {err}") from err
        if got != count:
            raise AudioFileError(f"truncated audio: read {got} of {count} frames")
        return out

    def close(self) -> None:
        self.handle.close()


def open_audio(data: bytes) -> Pcm16Wav | SoundFileReader:
    """A reader for ``data``; raises ``AudioFileError`` when no reader understands it."""
    return Pcm16Wav.parse(data) or SoundFileReader(data)


def audio_files(folder: Path, left_out: list[tuple[str, str]] | None = None) -> list[Path]:
    """Audio files below ``folder`` in path order, skipping hidden files and folders.

    Folder symlinks are followed (speaker folders linked in from elsewhere are common), each real
    folder once: a link back to a folder already scanned (a loop, or a second link to it) is left
    out, and listed in ``left_out`` as ``(path, reason)``.
    """
    found = []
    seen: dict[str, Path] = {}
    for root, dirs, names in os.walk(folder, followlinks=True):
        seen.setdefault(os.path.realpath(root), Path(root))
        kept = []
        for name in sorted(d for d in dirs if not d.startswith(".")):
            real = os.path.realpath(os.path.join(root, name))
            if real in seen:
                if left_out is not None:
                    left_out.append((str(Path(root, name)), f"folder link to {real}, already scanned as "
                                     f"{seen.get(real, real)}: not scanned twice (a loop or a second link)"))
                continue
            seen[real] = Path(root, name)
            kept.append(name)
        dirs[:] = kept
        found += [Path(root) / n for n in names
                  if not n.startswith(".") and is_audio_extension(n.rpartition(".")[2])]
    return sorted(found)
