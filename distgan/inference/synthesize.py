"""Reading synthesis inputs and running them through a vocoder in batches (``distgan synthesize``).

Inputs are wav files (copy-synthesis: their mel is computed with the model's own front end) or
saved log-mel tensors, ``.npy`` or ``.pt``, shaped ``[n_mels, frames]`` or ``[1, n_mels, frames]``
(what TTS acoustic models write). Inputs are sorted by length and batched; shorter ones in a
batch are padded with the mel of silence and their output is cut back to ``frames * hop`` (less
what the generator always gives short: one hop for Vocos's ``center`` head). The
last frames of a padded input heard the padding, so they are computed again from the input's own
end: every output is the one the input would get alone, whatever else is in its batch.
A sample-rate or ``n_mels`` mismatch with the model is an error naming the file.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch
from tqdm import tqdm

from distgan.checkpoint.files import UnsafeCheckpointFile, load_file
from distgan.data.audiofile import SOUNDFILE_ERRORS
from distgan.inference.load import Vocoder

SILENCE_LOG_MEL = math.log(1e-5)  # the clamp floor of the log-mel


@dataclass
class Item:
    source: Path
    mel: torch.Tensor  # [n_mels, frames]

    @property
    def frames(self) -> int:
        return self.mel.shape[1]


def _read_tensor(path: Path) -> torch.Tensor:
    """A mel tensor, loaded weights-only: a ``.pt`` that pickles code is refused in distgan's
    words (torch's own message suggests loading it with ``weights_only=False``, which would run it)."""
    try:
        value = torch.from_numpy(np.load(path)) if path.suffix == ".npy" else load_file(path)
    except UnsafeCheckpointFile as err:
        reason = str(err).split(": refused to unpickle it: ", 1)[-1]
        raise ValueError(f"{path}: refused to read this mel input: {reason}; a mel input must hold a "
                         "tensor only (torch.save(mel, path), or np.save for .npy)") from err
    except (OSError, RuntimeError, ValueError, pickle.UnpicklingError) as err:
        raise ValueError(f"{path}: not a readable {path.suffix} tensor ({err})") from err
    if not torch.is_tensor(value):
        raise ValueError(f"{path}: expected a tensor, found {type(value).__name__}")
    return value


def read_input(path: Path, vocoder: Vocoder) -> Item:
    audio = vocoder.audio
    if path.suffix in (".npy", ".pt"):
        mel = _read_tensor(path).float()
        mel = mel.squeeze(0) if mel.dim() == 3 and mel.shape[0] == 1 else mel
        if mel.dim() != 2 or mel.shape[0] != audio.n_mels:
            raise ValueError(f"{path}: mel shape {tuple(mel.shape)} does not match the model's "
                             f"n_mels={audio.n_mels} (expected [n_mels, frames] or [1, n_mels, frames])")
        if mel.shape[1] == 0:
            raise ValueError(f"{path}: the mel has no frames")
        if not torch.isfinite(mel).all():
            raise ValueError(f"{path}: the mel holds NaN or Inf")
        return Item(path, mel)
    try:
        wave, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except SOUNDFILE_ERRORS as err:
        raise ValueError(f"{path}: not readable audio ({err})") from err
    if not np.isfinite(wave).all():
        raise ValueError(f"{path}: the audio holds NaN or Inf samples")
    if rate != audio.sample_rate:
        raise ValueError(f"{path}: sample rate {rate} Hz, but the model was trained at {audio.sample_rate} Hz "
                         "(resample it first)")
    wave = torch.from_numpy(wave.mean(axis=1))
    usable = len(wave) // audio.hop_length * audio.hop_length
    if usable == 0:
        raise ValueError(f"{path}: shorter than one hop ({audio.hop_length} samples)")
    device = next(vocoder.generator.parameters()).device
    return Item(path, vocoder.encode(wave[:usable].unsqueeze(0).to(device))[0].cpu())


def synthesize(vocoder: Vocoder, items: list[Item], batch_size: int, device: torch.device,
               progress: bool = False) -> list[np.ndarray]:
    """One waveform ``[frames * hop]`` (less the generator's shortfall) per item, in the order given, computed in length-sorted
    batches (``progress``: a bar of batches on stderr)."""
    hop = vocoder.audio.hop_length
    # Mel frames either side of a frame that can change its output samples.
    context = max(vocoder.receptive_field()) + 1
    order = sorted(range(len(items)), key=lambda index: items[index].frames)
    waves: list[np.ndarray] = [np.empty(0, np.float32)] * len(items)
    starts = range(0, len(order), batch_size)
    for start in tqdm(starts, desc="synthesize", unit="batch", disable=not progress or len(starts) < 2):
        batch = order[start:start + batch_size]
        frames = max(items[index].frames for index in batch)
        mels = torch.full((len(batch), vocoder.audio.n_mels, frames), SILENCE_LOG_MEL)
        for row, index in enumerate(batch):
            mels[row, :, : items[index].frames] = items[index].mel
        batch_waves = vocoder(mels.to(device)).float().cpu().numpy()
        # What the generator gives short of frames * hop (Vocos with center padding: one hop).
        short = frames * hop - batch_waves.shape[1]
        for row, index in enumerate(batch):
            item = items[index]
            wave = batch_waves[row, : item.frames * hop - short].copy()
            if item.frames < frames:
                # Only the last `context` frames can differ from a run on this item alone; redo
                # them from its last 2 * context frames, far enough back to be exact themselves.
                tail_mel = item.mel[:, -2 * context:].unsqueeze(0).to(device)
                tail = vocoder(tail_mel).float().cpu().numpy()[0]
                keep = min(item.frames, context) * hop
                wave[-keep:] = tail[-keep:]
            waves[index] = wave
    return waves
