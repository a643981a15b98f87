"""``distgan sample --checkpoint RUN -n 16 --out DIR [--seed S]``: clips from a noise-to-waveform run.

Loading and generating are ``distgan.inference.sample``; this module writes the wav files.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path,
                        help="run directory (its newest complete checkpoint) or checkpoint folder of a wavegan run")
    parser.add_argument("-n", "--count", type=int, default=16, help="clips to write; default: %(default)s")
    parser.add_argument("--out", required=True, type=Path, help="output folder (sample-0000.wav, ...)")
    parser.add_argument("--seed", type=int, default=0,
                        help="noise seed: the same seed and checkpoint give the same clips; default: %(default)s")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda if "
                                                       "available, else cpu)")
    parser.add_argument("--ema", action="store_true",
                        help="the average of the generator's weights the run kept (train.ema_decay) instead of its "
                             "live weights; refused for a checkpoint without one")


def main(args: argparse.Namespace) -> int:
    if args.count < 1:
        print(f"distgan sample: -n must be at least 1, got {args.count}")
        return 2
    import numpy as np
    import soundfile
    import torch

    from distgan.inference.sample import load_noise_generator, sample_clips

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        generator, cfg, step = load_noise_generator(args.checkpoint, ema=args.ema)
    except (ValueError, FileNotFoundError) as err:
        print(f"distgan sample: {err}")
        return 2
    waves = sample_clips(generator, args.count, args.seed, device)
    args.out.mkdir(parents=True, exist_ok=True)
    rate = cfg.audio.sample_rate
    for i, wave in enumerate(waves):
        soundfile.write(args.out / f"sample-{i:04d}.wav", np.clip(wave.numpy(), -1, 1), rate, subtype="PCM_16")
    print(f"wrote {len(waves)} clips of {len(waves[0]) / rate:.2f} s ({rate} Hz) to {args.out}, from the generator "
          f"at step {step} (seed {args.seed})")
    return 0
