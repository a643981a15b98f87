"""``distgan decode CODES... --out DIR [--checkpoint CODEC] [--n-quantizers K]``: codes files of
``distgan encode`` in, wav files out, at the length that was encoded.

The codec is ``--checkpoint`` when given, else the one each codes file records (the path
``distgan encode`` was given, made absolute); its sample rate, hop and codebook size must be the
file's. ``--n-quantizers K`` decodes the first ``K`` of the file's codebooks. Prints the bitrate.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from distgan.commands.encode import bitrate_line, duplicate_stems

if TYPE_CHECKING:
    from distgan.inference.codec import Codec
    from distgan.inference.codes import CodesInfo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, help="codes files (NAME.codes.safetensors)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (NAME.wav)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="the codec (default: the one each codes file records)")
    parser.add_argument("--n-quantizers", type=int, default=None,
                        help="decode the first K of the file's codebooks (default: all it holds)")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda if "
                                                       "available, else cpu)")
    parser.add_argument("--ema", action="store_true",
                        help="the average of the generator's weights the run kept (train.ema_decay) instead of its "
                             "live weights; refused for a checkpoint without one")


def _check(path: Path, info: CodesInfo, codec: Codec, k: int) -> None:
    for name in ("sample_rate", "hop_length", "codebook_size"):
        if getattr(info, name) != getattr(codec, name):
            raise ValueError(f"{path}: encoded with {name}={getattr(info, name)}, but the codec's is "
                             f"{getattr(codec, name)} (decode it with the codec it records: {info.checkpoint})")
    if not 1 <= k <= min(info.n_codebooks, codec.n_codebooks):
        raise ValueError(f"{path}: --n-quantizers {k}: between 1 and {min(info.n_codebooks, codec.n_codebooks)} "
                         f"(the file holds {info.n_codebooks} codebooks, the codec has {codec.n_codebooks})")


def main(args: argparse.Namespace) -> int:
    from distgan.inference.codes import codes_stem

    clash = duplicate_stems(args.inputs, codes_stem)
    if clash:
        print(f"distgan decode: {clash}")
        return 2
    import numpy as np
    import soundfile
    import torch

    from distgan.inference.codec import load_codec
    from distgan.inference.codes import read_codes

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    codecs: dict[Path, Codec] = {}
    jobs = []
    try:
        for path in args.inputs:
            codes, info = read_codes(path)
            source = args.checkpoint or Path(info.checkpoint)
            if source not in codecs:
                codecs[source] = load_codec(source, device=device, ema=args.ema)
            k = info.n_codebooks if args.n_quantizers is None else args.n_quantizers
            _check(path, info, codecs[source], k)
            jobs.append((path, codes[:k], info, codecs[source]))
    except (ValueError, FileNotFoundError) as err:
        print(f"distgan decode: {err}")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    printed = set()
    for path, codes, info, codec in jobs:
        k = codes.shape[0]
        if k not in printed:
            printed.add(k)
            print(bitrate_line(k, codec.codebook_size, codec.frame_rate, codec.bitrate(k)))
        wave = codec.decode(codes[None], info.length)[0, 0].float().cpu().numpy()
        target = args.out / f"{codes_stem(path)}.wav"
        soundfile.write(target, np.clip(wave, -1, 1), codec.sample_rate, subtype="PCM_16")
        print(f"wrote {target} ({len(wave) / codec.sample_rate:.2f} s, {codec.sample_rate} Hz)")
    return 0
