"""``distgan encode --checkpoint CODEC AUDIO... --out DIR [--n-quantizers K]``: audio files in, codes
files out (``NAME.codes.safetensors``: ``distgan.inference.codes``), at all of the codec's codebooks
or the first ``K`` (a lower bitrate). Prints the bitrate."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path,
                        help="a codec: run directory, checkpoint folder, exported .safetensors or DAC release .pth")
    parser.add_argument("inputs", nargs="+", type=Path,
                        help="audio files (resampled to the codec's rate, several channels averaged to mono)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (NAME.codes.safetensors)")
    parser.add_argument("--n-quantizers", type=int, default=None,
                        help="encode with the first K codebooks only (a lower bitrate; default: all)")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda if "
                                                       "available, else cpu)")
    parser.add_argument("--ema", action="store_true",
                        help="the average of the generator's weights the run kept (train.ema_decay) instead of its "
                             "live weights; refused for a checkpoint without one")


def bitrate_line(codebooks: int, codebook_size: int, frame_rate: float, bits_per_second: float) -> str:
    return (f"bitrate: {codebooks} codebooks x log2({codebook_size}) bits x {frame_rate:g} frames/s = "
            f"{bits_per_second / 1000:.2f} kbit/s")


def duplicate_stems(inputs: list[Path], stem: Callable[[Path], str]) -> str | None:
    """Two inputs that would write the same output, as a message (or None)."""
    seen: dict[str, Path] = {}
    for path in inputs:
        if stem(path) in seen:
            return f"{seen[stem(path)]} and {path} would both write {stem(path)}"
        seen[stem(path)] = path
    return None


def main(args: argparse.Namespace) -> int:
    clash = duplicate_stems(args.inputs, lambda path: path.stem)
    if clash:
        print(f"distgan encode: {clash}")
        return 2
    import torch

    from distgan.inference.codec import load_codec
    from distgan.inference.codes import CODES_SUFFIX, CodesInfo, read_audio, write_codes

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        codec = load_codec(args.checkpoint, device=device, ema=args.ema)
        k = codec.n_codebooks if args.n_quantizers is None else args.n_quantizers
        if not 1 <= k <= codec.n_codebooks:
            raise ValueError(f"--n-quantizers {k}: between 1 and the codec's {codec.n_codebooks} codebooks")
        waves = [read_audio(path, codec.sample_rate) for path in args.inputs]
    except (ValueError, FileNotFoundError) as err:
        print(f"distgan encode: {err}")
        return 2
    print(bitrate_line(k, codec.codebook_size, codec.frame_rate, codec.bitrate(k)))
    args.out.mkdir(parents=True, exist_ok=True)
    for path, (wave, source_rate) in zip(args.inputs, waves, strict=True):
        codes = codec.encode(wave[None, None], k)[0]
        info = CodesInfo(sample_rate=codec.sample_rate, hop_length=codec.hop_length,
                         codebook_size=codec.codebook_size, n_codebooks=k, model_codebooks=codec.n_codebooks,
                         length=wave.shape[-1], checkpoint=str(args.checkpoint.resolve()),
                         family=codec.generator_cfg.family, source=str(path), source_sample_rate=source_rate)
        target = args.out / f"{path.stem}{CODES_SUFFIX}"
        write_codes(target, codes, info)
        print(f"wrote {target} ({k} x {codes.shape[-1]} codes, {wave.shape[-1] / codec.sample_rate:.2f} s)")
    return 0
