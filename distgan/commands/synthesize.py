"""``distgan synthesize --checkpoint PATH INPUT... --out DIR``: wav or mel files in, wav files out.

Reading inputs and batching them is ``distgan.inference.synthesize``; this module names the
outputs, writes them and reports the real-time factor.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path,
                        help="run directory, checkpoint folder or exported .safetensors")
    parser.add_argument("inputs", nargs="+", type=Path, help="wav files or .npy/.pt log-mel tensors")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="inputs vocoded together (padded to the longest); default: %(default)s")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda if "
                                                       "available, else cpu)")
    parser.add_argument("--ema", action="store_true",
                        help="the average of the generator's weights the run kept (train.ema_decay) instead of its "
                             "live weights; refused for a checkpoint without one")


def main(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        print(f"distgan synthesize: --batch-size must be at least 1, got {args.batch_size}")
        return 2
    stems: dict[str, Path] = {}
    for path in args.inputs:
        if path.stem in stems:
            print(f"distgan synthesize: {stems[path.stem]} and {path} would both write {path.stem}.wav")
            return 2
        stems[path.stem] = path
    import numpy as np
    import soundfile
    import torch

    from distgan.inference.load import load_generator
    from distgan.inference.synthesize import read_input, synthesize

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        vocoder = load_generator(args.checkpoint, device=device, ema=args.ema)
        items = [read_input(path, vocoder) for path in args.inputs]
    except (ValueError, FileNotFoundError) as err:
        print(f"distgan synthesize: {err}")
        return 2
    start = time.perf_counter()
    waves = synthesize(vocoder, items, args.batch_size, device, progress=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    rate = vocoder.audio.sample_rate
    seconds = 0.0
    for item, wave in zip(items, waves, strict=True):
        path = args.out / f"{item.source.stem}.wav"
        soundfile.write(path, np.clip(wave, -1, 1), rate, subtype="PCM_16")
        seconds += len(wave) / rate
        print(f"wrote {path} ({len(wave) / rate:.2f} s)")
    print(f"synthesized {seconds:.1f} s of audio in {elapsed:.2f} s on {device}: "
          f"real-time factor {elapsed / max(seconds, 1e-9):.4f} ({seconds / max(elapsed, 1e-9):.1f}x real time)")
    return 0
