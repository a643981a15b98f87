"""``distgan index SHARDS...``: write ``index.json`` for WebDataset shards another tool wrote.

Training reads shards without an index too, counting their samples from the tar headers at each
start; an index made once skips that, lets ``pipe:`` shards train, and lets training check the
sample rate before it starts (``distgan.data.indexing``). Exit status: 0 when the index was
written (shards or clips that could not be read are listed in its ``failed`` and printed); 1
when no sample was found; 2 on a usage error (no shards, an index already there).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from distgan.data.format import INDEX_NAME

USAGE_EXIT_CODE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shards", nargs="+", metavar="SHARDS",
                        help="folders of .tar shards, .tar paths, brace patterns or pipe: URLs (quote patterns)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"where to write the index (default: FOLDER/{INDEX_NAME} when the shards share a folder)")
    parser.add_argument("--split", default="train",
                        help="the split the shards form in the index (default: %(default)s)")
    parser.add_argument("--no-durations", dest="durations", action="store_false",
                        help="read tar headers only (counts and keys, as a start without an index does): "
                             "no seconds and no sample rate, but no shard is read whole")
    parser.add_argument("--threads", type=int, default=8, help="shards read at once (default: %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="replace an index that is already there (all of it: its other splits too)")


def _default_out(urls: list[str]) -> Path | None:
    folders = {Path(url).resolve().parent for url in urls if not url.startswith("pipe:")}
    if len(folders) != 1 or any(url.startswith("pipe:") for url in urls):
        return None
    return folders.pop() / INDEX_NAME


def main(args: argparse.Namespace) -> int:
    from distgan.data.indexing import index_shards
    from distgan.data.shards import resolve_shards

    try:
        shards = resolve_shards(args.shards, args.split, use_index=False).shards
    except (FileNotFoundError, ValueError) as err:
        print(f"distgan index: {err}", file=sys.stderr)
        return USAGE_EXIT_CODE
    out = args.out or _default_out([shard.url for shard in shards])
    if out is None:
        print("distgan index: the shards are remote or in several folders: say where the index goes "
              "with --out", file=sys.stderr)
        return USAGE_EXIT_CODE
    if out.exists() and not args.force:
        print(f"distgan index: {out} exists; --force replaces it", file=sys.stderr)
        return USAGE_EXIT_CODE
    start, done = time.perf_counter(), [0]

    def progress(summary: object) -> None:
        done[0] += 1
        if sys.stderr.isatty() or done[0] == len(shards) or done[0] % 100 == 0:
            print(f"\rindexed {done[0]}/{len(shards)} shards", end="\n" if done[0] == len(shards) else "",
                  file=sys.stderr, flush=True)

    index = index_shards(shards, out, split=args.split, durations=args.durations, threads=args.threads,
                         source=" ".join(args.shards), progress=progress)
    split = index.splits[args.split]
    for failure in index.failed[:20]:
        print(f"  not usable: {failure['input']}: {failure['reason']}")
    if len(index.failed) > 20:
        print(f"  ... and {len(index.failed) - 20} more (all of them are in the index's 'failed')")
    if split.samples == 0:
        print("distgan index: no sample found; nothing written", file=sys.stderr)
        return 1
    index.write_file(out)
    rates = ", ".join(f"{rate} Hz x{count}" for rate, count in index.options["sample_rates"].items())
    seconds = "" if split.seconds is None else (
        f", {split.seconds / 3600:.2f} h of audio ({rates})" if split.seconds >= 360 else f", {split.seconds:.1f} s of audio ({rates})")
    print(f"wrote {out}: {split.samples} samples in {len(split.shards)} shards{seconds}, "
          f"in {time.perf_counter() - start:.1f} s")
    return 0
