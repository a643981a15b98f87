"""``distgan prepare SRC OUT``: turn a corpus into WebDataset shards and ``index.json``.

The work is ``distgan.data.prepare.prepare_corpus``. Exit status: 0 when something was written;
1 when no input could be used; 2 on a usage error (e.g. sources at several rates and no
``--sample-rate``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from distgan.config import SyntheticConfig
from distgan.data.format import WRITTEN_AUDIO_FORMATS
from distgan.data.prepare import PrepareOptions, prepare_corpus, summary
from distgan.data.prepare.options import DEFAULT_SHARD_MAX_BYTES, NORMALIZE_MODES


def _byte_size(text: str) -> int:
    """``"100M"`` -> 100_000_000 (decimal K, M, G; plain numbers are bytes)."""
    units = {"K": 10**3, "M": 10**6, "G": 10**9}
    text = text.strip().upper().removesuffix("B")
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 100000000, 100M, 1G)") from err


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = PrepareOptions()
    parser.add_argument("src", nargs="?", type=Path, metavar="SRC",
                        help="folder of audio files, LJSpeech folder (metadata.csv + wavs/) or .jsonl manifest")
    parser.add_argument("out", type=Path, metavar="OUT", help="output folder for the shards and index.json")
    parser.add_argument("--synthetic", action="store_true",
                        help="write the built-in synthetic speech-like corpus (no SRC)")
    audio = parser.add_argument_group("audio")
    audio.add_argument("--sample-rate", type=int, default=None,
                       help="target rate in Hz (default: the sources' rate if they agree; 22050 for --synthetic)")
    audio.add_argument("--mono", action=argparse.BooleanOptionalAction, default=defaults.mono,
                       help="mix multichannel files down to mono; with --no-mono they are reported as failed")
    audio.add_argument("--normalize", choices=NORMALIZE_MODES, default=defaults.normalize,
                       help="per-clip gain (default: %(default)s)")
    audio.add_argument("--peak-db", type=float, default=defaults.peak_db,
                       help="peak for --normalize peak, and the ceiling for loudness (default: %(default)s dBFS)")
    audio.add_argument("--loudness-lufs", type=float, default=defaults.loudness_lufs,
                       help="target for --normalize loudness (default: %(default)s LUFS)")
    audio.add_argument("--format", dest="audio_format", choices=WRITTEN_AUDIO_FORMATS, default=defaults.audio_format,
                       help="audio in the shards, both PCM-16: wav streams ~2x faster, flac is ~40%% smaller "
                            "(default: %(default)s)")
    split = parser.add_argument_group("validation split (by a hash of seed and key)")
    held_out = split.add_mutually_exclusive_group()
    held_out.add_argument("--val-fraction", type=float, default=None, help="hold out about this fraction")
    held_out.add_argument("--val-count", type=int, default=None,
                          help="hold out this many, leaving at least one for training (default: 4)")
    split.add_argument("--seed", type=int, default=defaults.seed,
                       help="changes the validation split and the synthetic audio (default: %(default)s)")
    shards = parser.add_argument_group("shards")
    shards.add_argument("--shard-max-bytes", type=_byte_size, default=DEFAULT_SHARD_MAX_BYTES,
                        help="start a new shard before this size, e.g. 100M; 0: no limit (default: 100M)")
    shards.add_argument("--shard-max-samples", type=int, default=0,
                        help="start a new shard after this many samples; 0: no limit (default)")
    shards.add_argument("--workers", type=int, default=defaults.workers,
                        help="conversion processes; the output does not depend on it (default: %(default)s)")
    shards.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                        help="show a progress bar")
    synth = parser.add_argument_group("synthetic corpus")
    synth.add_argument("--speakers", type=int, default=SyntheticConfig.speakers,
                       help="voices from low to high pitch (default: %(default)s)")
    synth.add_argument("--utterances", type=int, default=SyntheticConfig.utterances,
                       help="in all, spread over the speakers in turn (default: %(default)s)")


def main(args: argparse.Namespace) -> int:
    if args.synthetic == (args.src is not None):
        problem = "SRC and --synthetic exclude each other" if args.synthetic else "give SRC, or --synthetic"
        print(f"distgan prepare: error: {problem}", file=sys.stderr)
        return 2
    options = PrepareOptions(
        sample_rate=args.sample_rate, mono=args.mono, normalize=args.normalize, peak_db=args.peak_db,
        loudness_lufs=args.loudness_lufs, val_fraction=args.val_fraction, val_count=args.val_count,
        shard_max_bytes=args.shard_max_bytes or None, shard_max_samples=args.shard_max_samples or None,
        audio_format=args.audio_format, workers=args.workers, seed=args.seed, speakers=args.speakers,
        utterances=args.utterances, progress=args.progress,
    )
    try:
        index = prepare_corpus(args.src, args.out, options)
    except (ValueError, FileNotFoundError) as err:
        print(f"distgan prepare: error: {err}", file=sys.stderr)
        return 2
    print(summary(index, args.out))
    return 0 if index.splits else 1

