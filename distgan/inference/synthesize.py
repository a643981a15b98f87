"""``distgan synthesize --checkpoint PATH INPUT... --out DIR``: wav or mel files in, wav files out.

Inputs are wav files (copy-synthesis: their mel is computed with the model's own front end) or
saved log-mel tensors, ``.npy`` or ``.pt``, shaped ``[n_mels, frames]`` or ``[1, n_mels, frames]``
(what TTS acoustic models write). Inputs are sorted by length and batched; shorter ones in a
batch are padded with the mel of silence and their output is cut back to ``frames * hop``.
A sample-rate or ``n_mels`` mismatch with the model is an error naming the file.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch

from distgan.inference.load import Vocoder, load_generator

SILENCE_LOG_MEL = math.log(1e-5)  # the clamp floor of the log-mel


@dataclass
class Item:
    source: Path
    mel: torch.Tensor  # [n_mels, frames]


def read_input(path: Path, vocoder: Vocoder) -> Item:
    audio = vocoder.audio
    if path.suffix in (".npy", ".pt"):
        mel = torch.from_numpy(np.load(path)) if path.suffix == ".npy" else torch.load(path, map_location="cpu")
        if not torch.is_tensor(mel):
            raise ValueError(f"{path}: expected a tensor, found {type(mel).__name__}")
        mel = mel.float().squeeze(0) if mel.dim() == 3 else mel.float()
        if mel.dim() != 2 or mel.shape[0] != audio.n_mels:
            raise ValueError(f"{path}: mel shape {tuple(mel.shape)} does not match the model's "
                             f"n_mels={audio.n_mels} (expected [n_mels, frames])")
        return Item(path, mel)
    try:
        wave, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as err:
        raise ValueError(f"{path}: not readable audio ({err})") from err
    if rate != audio.sample_rate:
        raise ValueError(f"{path}: sample rate {rate} Hz, but the model was trained at {audio.sample_rate} Hz "
                         "(resample it first)")
    wave = torch.from_numpy(wave.mean(axis=1))
    usable = len(wave) // audio.hop_length * audio.hop_length
    if usable == 0:
        raise ValueError(f"{path}: shorter than one hop ({audio.hop_length} samples)")
    device = next(vocoder.generator.parameters()).device
    return Item(path, vocoder.encode(wave[:usable].unsqueeze(0).to(device))[0].cpu())


def synthesize(vocoder: Vocoder, items: list[Item], batch_size: int, device: torch.device
               ) -> list[tuple[Item, np.ndarray]]:
    hop = vocoder.audio.hop_length
    order = sorted(items, key=lambda item: item.mel.shape[1])
    out = []
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        frames = max(item.mel.shape[1] for item in batch)
        mels = torch.full((len(batch), vocoder.audio.n_mels, frames), SILENCE_LOG_MEL)
        for i, item in enumerate(batch):
            mels[i, :, : item.mel.shape[1]] = item.mel
        waves = vocoder(mels.to(device)).float().cpu().numpy()
        for i, item in enumerate(batch):
            out.append((item, waves[i, : item.mel.shape[1] * hop]))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path,
                        help="run directory, checkpoint folder or exported .safetensors")
    parser.add_argument("inputs", nargs="+", type=Path, help="wav files or .npy/.pt log-mel tensors")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def main(args: argparse.Namespace) -> int:
    device = torch.device(args.device)
    vocoder = load_generator(args.checkpoint, device=device)
    try:
        items = [read_input(path, vocoder) for path in args.inputs]
    except (ValueError, FileNotFoundError) as err:
        print(f"distgan synthesize: {err}")
        return 2
    start = time.perf_counter()
    results = synthesize(vocoder, items, args.batch_size, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    seconds = 0.0
    for item, wave in results:
        path = args.out / f"{item.source.stem}.wav"
        soundfile.write(path, np.clip(wave, -1, 1), vocoder.audio.sample_rate, subtype="PCM_16")
        seconds += len(wave) / vocoder.audio.sample_rate
        print(f"wrote {path} ({len(wave) / vocoder.audio.sample_rate:.2f} s)")
    print(f"synthesized {seconds:.1f} s of audio in {elapsed:.2f} s on {device}: "
          f"real-time factor {elapsed / max(seconds, 1e-9):.4f} ({seconds / max(elapsed, 1e-9):.1f}x real time)")
    return 0
