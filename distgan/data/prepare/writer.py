"""Writing converted clips into deterministic tar shards, the validation split and ``index.json``.

Real corpora and the synthetic one both end in ``write_corpus``: the same split rule, the same
shard limits, the same index. The output depends only on the inputs and the options, never on
``workers`` or timing:

- clips are converted in key order (``Pool.imap`` keeps the order) and written in that order;
- tar headers carry fixed metadata (mtime 0, uid/gid 0, no user names), so re-running gives
  byte-identical shards;
- a clip is held out for validation by the SHA-1 of ``"{seed}:{key}"``: with ``val_fraction``
  when that hash, read as a number in [0, 1), is below the fraction (a clip keeps its split
  when other clips are added or removed); with ``val_count`` the clips with the smallest hashes.
  Either way at least one clip stays in training.

``index.json`` is removed first and written last, so a crash never leaves an index that points
at half-rewritten shards; shards of an earlier run that the new index does not list are deleted.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path

from tqdm import tqdm

from distgan.data.format import INDEX_NAME, SHARD_NAME, SPLITS, shard_name
from distgan.data.index import CorpusIndex, ShardEntry, SplitEntry
from distgan.data.prepare.convert import Clip, ClipJob, Failure, convert
from distgan.data.prepare.options import PrepareOptions
from distgan.data.tar import BLOCK

TAR_END = bytes(2 * BLOCK)


def split_hash(key: str, seed: int) -> float:
    """A key's place in [0, 1), fixed by the key and the seed alone."""
    digest = hashlib.sha1(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def validation_keys(keys: Sequence[str], options: PrepareOptions) -> set[str]:
    """The keys held out for validation (see the module docstring); never all of them."""
    ranked = sorted(keys, key=lambda k: (split_hash(k, options.seed), k))
    if options.val_fraction is not None:
        held = [k for k in ranked if split_hash(k, options.seed) < options.val_fraction]
    else:
        held = ranked[: options.val_count or 0]
    return set(held[: max(len(keys) - 1, 0)])


def tar_member(name: str, data: bytes) -> bytes:
    """One member (header, data, zero padding) with fixed metadata, so shards are reproducible."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    header = info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")
    return header + data + bytes(-len(data) % BLOCK)


class ShardWriter:
    """One split's shards: a new ``{split}-NNNNNN.tar`` begins when the next sample would push the
    current one past ``max_bytes`` (file size, end blocks included) or ``max_samples``.

    A single sample larger than ``max_bytes`` gets a shard of its own.
    """

    def __init__(self, folder: Path, split: str, max_bytes: int | None, max_samples: int | None) -> None:
        self.folder, self.split = folder, split
        self.max_bytes, self.max_samples = max_bytes, max_samples
        self.entries: list[ShardEntry] = []
        self._file = None
        self._bytes = self._samples = 0
        self._seconds = 0.0

    def add(self, clip: Clip) -> None:
        record = b"".join(tar_member(f"{clip.key}.{ext}", data) for ext, data in sorted(clip.members.items()))
        if self._file is not None and self._full_with(len(record)):
            self._finish()
        if self._file is None:
            name = shard_name(self.split, len(self.entries))
            self._file = open(self.folder / name, "wb")  # noqa: SIM115 - closed in _finish
            self._bytes = self._samples = 0
            self._seconds = 0.0
        self._file.write(record)
        self._bytes += len(record)
        self._samples += 1
        self._seconds += clip.seconds

    def close(self) -> list[ShardEntry]:
        if self._file is not None:
            self._finish()
        return self.entries

    def _full_with(self, record_bytes: int) -> bool:
        too_big = self.max_bytes is not None and self._bytes + record_bytes + len(TAR_END) > self.max_bytes
        too_many = self.max_samples is not None and self._samples >= self.max_samples
        return too_big or too_many

    def _finish(self) -> None:
        assert self._file is not None
        self._file.write(TAR_END)
        self._file.close()
        self._file = None
        name = shard_name(self.split, len(self.entries))
        self.entries.append(ShardEntry(name, self._samples, round(self._seconds, 6)))


def write_corpus(out: Path, jobs: Sequence[ClipJob], options: PrepareOptions, *, source: str,
                 failed: Iterable[Failure] = ()) -> CorpusIndex:
    """Convert ``jobs`` (sorted by key, unique keys) and write shards + ``index.json`` into ``out``.

    ``options`` must be resolved (``sample_rate`` set). ``failed`` are failures found before
    conversion; conversion adds its own. Returns the index; it is written only when at least one
    sample was, since a folder without samples is no corpus.
    """
    assert options.sample_rate is not None, "resolve the options before writing"
    out.mkdir(parents=True, exist_ok=True)
    (out / INDEX_NAME).unlink(missing_ok=True)
    held_out = validation_keys([job.key for job in jobs], options)
    writers = {split: ShardWriter(out, split, options.shard_max_bytes, options.shard_max_samples)
               for split in SPLITS}
    failures = list(failed)
    for result in _converted(jobs, options):
        if isinstance(result, Failure):
            failures.append(result)
        else:
            writers["val" if result.key in held_out else "train"].add(result)
    # A split without samples is left out: asking the index for it fails with a clear message.
    splits = {split: SplitEntry(entries) for split, writer in writers.items() if (entries := writer.close())}
    _remove_stale_shards(out, {entry.path for split in splits.values() for entry in split.shards})
    index = CorpusIndex(
        sample_rate=options.sample_rate, audio_format=options.audio_format, splits=splits,
        options=options.to_json(), source=source,
        failed=[f.to_json() for f in sorted(failures, key=lambda f: (f.path, f.reason))],
    )
    if any(split.samples for split in splits.values()):
        index.write(out)
    return index


def _converted(jobs: Sequence[ClipJob], options: PrepareOptions) -> Iterator[Clip | Failure]:
    """Converted clips in the order of ``jobs``, from ``options.workers`` processes."""
    bar = partial(tqdm, total=len(jobs), unit="clip", desc="prepare", disable=not options.progress)
    work = partial(convert, options=options)
    if options.workers == 1 or len(jobs) < 2:
        yield from bar(map(work, jobs))
        return
    # spawn, not fork: the caller may be a trainer whose torch/OpenMP threads a fork would copy
    # mid-operation (a known source of deadlocks).
    context = multiprocessing.get_context("spawn")
    chunk = max(1, min(16, len(jobs) // (options.workers * 8)))
    with context.Pool(options.workers) as pool:
        yield from bar(pool.imap(work, jobs, chunksize=chunk))


def _remove_stale_shards(out: Path, keep: set[str]) -> None:
    for path in out.iterdir():
        if SHARD_NAME.match(path.name) and path.name not in keep:
            path.unlink()
