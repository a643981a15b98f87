"""Audio into a codec and the codes files of ``distgan encode`` / ``distgan decode``.

A codes file (``NAME.codes.safetensors``) is one tensor, ``codes`` ``[K, frames]`` int64, and
string metadata: which codec wrote it and at what settings (``CodesInfo``). safetensors holds
tensors and strings only, so reading one runs no code. ``checkpoint`` records the codec's path
(absolute), which ``distgan decode`` uses when it is not given ``--checkpoint``; the sample rate,
hop and codebook size are checked against whichever codec decodes.

Audio for encoding (``read_audio``): a file at another sample rate is resampled to the codec's
(``torchaudio.functional.resample``, band-limited sinc), several channels are averaged to mono;
either is reported. A file is encoded in one pass (its memory grows with its length; DAC's own
``compress`` chunks long files, distgan does not).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch

from distgan.data.audiofile import SOUNDFILE_ERRORS
from distgan.inference.codec import bitrate

CODES_SUFFIX = ".codes.safetensors"
CODES_KEY = "codes"
FORMAT_KEY = "distgan_codes"
FORMAT_VERSION = "1"


@dataclass(frozen=True)
class CodesInfo:
    """What a codes file records beside its ``[n_codebooks, frames]`` codes."""

    sample_rate: int  # the codec's
    hop_length: int  # samples per code frame
    codebook_size: int
    n_codebooks: int  # codebooks in this file (the bitrate it was encoded at)
    model_codebooks: int  # codebooks the codec has
    length: int  # audio samples at sample_rate (the decoded audio is cut to it)
    checkpoint: str  # the codec it was encoded with (absolute path)
    family: str
    source: str  # the audio file
    source_sample_rate: int

    @property
    def bitrate(self) -> float:
        return bitrate(self.n_codebooks, self.codebook_size, self.frame_rate)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length


def codes_stem(path: Path) -> str:
    """``NAME`` of ``NAME.codes.safetensors`` (or of any other file name)."""
    return path.name[: -len(CODES_SUFFIX)] if path.name.endswith(CODES_SUFFIX) else path.stem


def write_codes(path: Path, codes: torch.Tensor, info: CodesInfo) -> None:
    from safetensors.torch import save_file

    metadata = {key: str(value) for key, value in dataclasses.asdict(info).items()}
    save_file({CODES_KEY: codes.detach().to("cpu", torch.long).contiguous()}, str(path),
              metadata={FORMAT_KEY: FORMAT_VERSION, **metadata})


def read_codes(path: Path) -> tuple[torch.Tensor, CodesInfo]:
    """Codes ``[n_codebooks, frames]`` and what the file records; ``ValueError`` naming the file
    when it is not one ``distgan encode`` wrote."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            codes = f.get_tensor(CODES_KEY) if CODES_KEY in f.keys() else None  # noqa: SIM118 - safe_open has no __contains__
    except (OSError, SafetensorError) as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from err
    if metadata.get(FORMAT_KEY) != FORMAT_VERSION or codes is None:
        raise ValueError(f"{path}: not a codes file of distgan encode (no {FORMAT_KEY!r} metadata or "
                         f"{CODES_KEY!r} tensor)")
    values: dict[str, Any] = {}
    try:
        for field in dataclasses.fields(CodesInfo):
            values[field.name] = metadata[field.name] if field.type == "str" else int(metadata[field.name])
    except (KeyError, ValueError) as err:
        raise ValueError(f"{path}: its metadata lacks or garbles {err}") from err
    info = CodesInfo(**values)
    if codes.dim() != 2 or codes.shape[0] != info.n_codebooks:
        raise ValueError(f"{path}: codes of shape {tuple(codes.shape)}, but it records {info.n_codebooks} codebooks")
    return codes, info


def read_audio(path: Path, sample_rate: int, report: Callable[[str], Any] = print) -> tuple[torch.Tensor, int]:
    """``path`` as mono float32 ``[T]`` at ``sample_rate`` (resampled, downmixed, each reported),
    and the file's own sample rate."""
    try:
        wave, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except SOUNDFILE_ERRORS as err:
        raise ValueError(f"{path}: not readable audio ({err})") from err
    if wave.shape[0] == 0:
        raise ValueError(f"{path}: no samples")
    if not np.isfinite(wave).all():
        raise ValueError(f"{path}: the audio holds NaN or Inf samples")
    if wave.shape[1] > 1:
        report(f"{path}: {wave.shape[1]} channels, averaged to mono (the codec is mono)")
    audio = torch.from_numpy(wave.mean(axis=1))
    if rate != sample_rate:
        import torchaudio.functional

        report(f"{path}: resampled from {rate} Hz to the codec's {sample_rate} Hz")
        audio = torchaudio.functional.resample(audio, rate, sample_rate)
    return audio, rate
