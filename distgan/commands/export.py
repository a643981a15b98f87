"""``distgan export SOURCE OUT``: a run's generator as plain fp32 weights (``--format distgan``, the
default: ``distgan.inference.export``), or its checkpoint in HiFi-GAN's, BigVGAN's, Vocos's, DAC's or EnCodec's
release format for their own code (``--format hifigan|bigvgan|vocos|dac|encodec``:
``distgan.inference.export_release``)."""

from __future__ import annotations

import argparse
from pathlib import Path

EXPORT_SUFFIX = ".safetensors"  # distgan.checkpoint.weights.EXPORT_SUFFIX (a test keeps them equal)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="run directory (newest complete checkpoint) or checkpoint folder")
    parser.add_argument("out", type=Path, help="output .safetensors file (--format distgan), folder (hifigan, "
                                               "bigvgan, vocos) or .pth file or folder (dac)")
    from distgan.families import release_format_names  # torch-free: the families' declared formats

    parser.add_argument("--format", choices=("distgan", *release_format_names()), default="distgan",
                        help="distgan: fp32 safetensors, weight norm folded; hifigan / bigvgan: the original "
                             "code's checkpoint files and config.json; vocos: config.yaml and pytorch_model.bin; "
                             "dac: the .pth that dac.DAC.load reads (default: %(default)s)")
    parser.add_argument("--discriminator", action="store_true",
                        help="hifigan / bigvgan: also write the discriminators (do_ file), with fresh optimizers")
    parser.add_argument("--ema", action="store_true",
                        help="the average of the generator's weights the run kept (train.ema_decay) instead of its "
                             "live weights; refused for a checkpoint without one")
    parser.add_argument("--optimizer", action="store_true",
                        help="hifigan / bigvgan: the do_ file's optimizers are the run's AdamW states (DDP "
                             "checkpoints; implies --discriminator)")


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.format == "distgan":
        if args.discriminator or args.optimizer:
            return "--discriminator and --optimizer go with --format hifigan or bigvgan"
        if args.out.suffix != EXPORT_SUFFIX:
            return f"output must end in {EXPORT_SUFFIX}, got {args.out}"
        return None
    if args.out.suffix == EXPORT_SUFFIX or (args.out.is_file() and args.out.suffix != _file_suffix(args.format)):
        return f"--format {args.format} writes a folder of files; {args.out} names a file"
    return None


def _file_suffix(fmt: str) -> str | None:
    """The suffix of a format that is one file (DAC's .pth), or None."""
    from distgan.families import release_format

    return getattr(release_format(fmt)[1], "file_suffix", None)


def main(args: argparse.Namespace) -> int:
    problem = _usage_problem(args)
    if problem:
        print(f"distgan export: {problem}")
        return 2
    # torch: only once the command runs
    from distgan.inference.export import export_generator
    from distgan.inference.export_release import export_release

    try:
        if args.format == "distgan":
            path = export_generator(args.source, args.out, args.ema)
        else:
            paths = export_release(args.source, args.out, args.format, args.discriminator, args.optimizer,
                                   ema=args.ema)
    except (ValueError, FileNotFoundError) as err:
        print(f"distgan export: {err}")
        return 2
    if args.format == "distgan":
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB) and {path.with_suffix('.yaml')}")
    else:
        print(f"wrote {', '.join(str(p) for p in paths)} ({args.format}'s release format)")
    return 0
