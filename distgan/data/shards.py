"""Which tar shards a run reads and how many samples each holds.

``resolve_shards`` turns what a user writes in ``data.shards`` into a ``ShardSet``. A spec is
one string or a list of them (YAML: ``data.shards=[/a/x.tar,/b]``; each item any form below,
their shards concatenated). A comma inside a string is brace syntax, never a separator: paths
and ``pipe:`` commands may hold commas. The string forms:

- a folder holding ``index.json``, or the path of an ``index.json``: that split's shards, with
  the sample counts (and keys) the index records (no shard is opened);
- a folder without an index: all its ``*.tar`` files, sorted by name, whatever they are called
  (``webdataset.ShardWriter``'s ``shard-000000.tar``, ...); except that when it holds shards
  named the way ``distgan prepare`` names them (``format.SHARD_NAME``: ``train-000000.tar``,
  ``val-000000.tar``), only the split's own are taken, so that a folder whose index was lost
  does not train on its validation clips (or validate on its training clips);
- a brace pattern (``/data/shard-{000000..000099}.tar``) or a single ``.tar`` path;
- ``pipe:`` URLs (``pipe:aws s3 cp s3://b/shard-{000..009}.tar -``), brace-expanded and opened
  with WebDataset's ``gopen``, which runs the command and reads its stdout.

Local shards are checked at resolve time, so a typo fails before any process group starts.
Shards without recorded counts are counted by ``ShardSet.counted``, which reads tar headers
only (``reading.shard_keys``); a remote (``pipe:``) shard cannot be counted cheaply, so training
on one needs an index (``distgan index`` writes one). ``ShardSet.select`` narrows a set to one
side of ``data.val_fraction``'s held-out split (``holdout.py``); counts then count that side.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import braceexpand

from distgan.data.format import INDEX_NAME, SHARD_NAME
from distgan.data.holdout import Holdout
from distgan.data.index import CorpusIndex
from distgan.data.reading import RawSample, ShardReadError, count_samples, iter_shard, shard_keys

__all__ = ["RawSample", "Shard", "ShardReadError", "ShardSet", "ShardSpec", "UntrustedCommand",
           "count_samples", "iter_shard", "pipe_commands", "resolve_shards"]

# What ``data.shards`` and ``data.val_shards`` hold: one spec, or a list of them.
ShardSpec = str | Sequence[str]
# Shards whose headers are read at once when counting: reads wait on the disk or network, not
# on Python, so a few threads hide their latency (a cold local disk; a network file system).
COUNT_THREADS = 8


@dataclass(frozen=True)
class Shard:
    """One tar file: a local path or a ``pipe:`` URL.

    ``samples``: how many samples the set uses from it (all, or ``keep``'s side of the held-out
    split); ``keys``: every sample's key in tar order. ``None`` when not known yet.
    """

    url: str
    samples: int | None = None
    seconds: float | None = None
    keys: tuple[str, ...] | None = None
    keep: Holdout | None = None

    @property
    def is_pipe(self) -> bool:
        return self.url.startswith("pipe:")

    def keeps(self, key: str) -> bool:
        """Whether the sample ``key`` of this shard belongs to the set."""
        return self.keep is None or self.keep.keeps(key)

    def read(self, start: int = 0, stop: int | None = None,
             beyond: Callable[[], None] | None = None) -> Iterator[RawSample]:
        """The set's samples ``start <= index < stop`` of this shard (``reading.iter_shard``)."""
        return iter_shard(self.url, start, stop, beyond=beyond, keep=None if self.keep is None else self.keep.keeps)


@dataclass
class ShardSet:
    """The shards of one split; ``sample_rate`` and ``index_path`` come from ``index.json``."""

    shards: list[Shard] = field(default_factory=list)
    sample_rate: int | None = None
    index_path: Path | None = None

    def __len__(self) -> int:
        return len(self.shards)

    @property
    def samples(self) -> int | None:
        """Total sample count, or ``None`` if some shard's count is unknown."""
        if any(shard.samples is None for shard in self.shards):
            return None
        return sum(shard.samples or 0 for shard in self.shards)

    def select(self, holdout: Holdout | None) -> ShardSet:
        """The set narrowed to one side of the held-out split (``None``: unchanged)."""
        if holdout is None or holdout.fraction <= 0.0:
            return self
        shards = [replace(shard, keep=holdout, seconds=None,
                          samples=None if shard.keys is None else sum(map(holdout.keeps, shard.keys)))
                  for shard in self.shards]
        return replace(self, shards=shards)

    def counted(self, threads: int = COUNT_THREADS) -> ShardSet:
        """The same set with every count known; a shard without one has its keys read from its
        tar headers (``threads`` shards at a time), and keeps them.

        Raises ``ValueError`` for a ``pipe:`` shard without them: splitting an epoch exactly
        between ranks needs the counts before anything is read, and streaming a remote shard
        just to count it would double the traffic (``distgan index`` does it once).
        """
        todo = [shard for shard in self.shards if shard.samples is None and shard.keys is None]
        for shard in todo:
            if shard.is_pipe:
                raise ValueError(
                    f"{shard.url}: sample count unknown; pipe: shards need an index.json with counts "
                    "(and, for data.val_fraction, keys): write one with `distgan index PIPE-URLS --out "
                    "index.json` and pass data.shards=index.json (plus data.allow_index_pipes=true)")
        listed: dict[str, tuple[str, ...]] = {}
        if todo:
            with ThreadPoolExecutor(max(1, min(threads, len(todo)))) as pool:
                listed = dict(zip([shard.url for shard in todo], pool.map(_keys_or_empty, todo), strict=True))
        shards = []
        for shard in self.shards:
            keys = listed.get(shard.url, shard.keys)
            if shard.samples is None:
                shard = replace(shard, samples=sum(map(shard.keeps, keys or ())), keys=keys)
            shards.append(shard)
        return replace(self, shards=shards)

    def without_keys(self) -> ShardSet:
        """The set without key lists (what a DataLoader worker needs is the counts)."""
        return replace(self, shards=[replace(shard, keys=None) for shard in self.shards])


def _keys_or_empty(shard: Shard) -> tuple[str, ...]:
    try:
        return tuple(shard_keys(shard.url))
    except ShardReadError as err:
        # Same policy as while streaming: a broken shard is reported, not fatal.
        warnings.warn(f"{err}; the shard contributes no samples", stacklevel=3)
        return ()


class UntrustedCommand(ValueError):
    """An ``index.json`` lists ``pipe:`` shards, and running commands from a file was not allowed."""


def resolve_shards(spec: ShardSpec, split: str = "train", allow_index_pipes: bool = False,
                   use_index: bool = True) -> ShardSet:
    """Turn ``data.shards`` (folder, index.json, brace pattern, .tar, ``pipe:`` URL, or a list
    of these) into shards.

    ``use_index=False`` (``distgan index``, rewriting one) takes a folder's tars as if it had no
    index. A ``pipe:`` URL the user wrote is the user's command. A ``pipe:`` shard listed in an
    ``index.json`` is a shell command from a file (which may have come with a downloaded
    corpus): it raises ``UntrustedCommand`` unless ``allow_index_pipes``.

    Raises ``FileNotFoundError`` naming a missing local path, and ``ValueError`` for an index
    without ``split`` or a spec that matches no shard.
    """
    if not isinstance(spec, str):
        if not spec:
            raise ValueError("empty list of shard specs")
        return _concatenate([resolve_shards(item, split, allow_index_pipes, use_index) for item in spec])
    spec = spec.strip()
    if not spec:
        raise ValueError("empty shard spec")
    if spec.startswith("pipe:"):
        return ShardSet([Shard(url) for url in braceexpand.braceexpand(spec)])
    if "{" in spec:
        return _local_shards([Path(p) for p in braceexpand.braceexpand(spec)], spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        if (path / INDEX_NAME).is_file() and use_index:
            return _from_index(path / INDEX_NAME, split, allow_index_pipes)
        return _local_shards(_folder_tars(path, split), spec)
    if path.suffix == ".json":
        return _from_index(path, split, allow_index_pipes)
    if path.suffix == ".tar":
        return _local_shards([path], spec)
    raise FileNotFoundError(f"shard spec {spec!r} is not an existing folder, index.json, .tar or pattern")


def _folder_tars(folder: Path, split: str) -> list[Path]:
    tars = sorted(folder.glob("*.tar"))
    if not tars:
        raise FileNotFoundError(f"no {INDEX_NAME} and no .tar shards in folder {folder}")
    named = {t: SHARD_NAME.match(t.name) for t in tars}
    if not any(named.values()):
        return tars
    own = [t for t, match in named.items() if match and match["split"] == split]
    if not own:
        raise FileNotFoundError(f"no {split}-NNNNNN.tar shards (and no {INDEX_NAME}) in folder {folder}")
    return own


def _from_index(path: Path, split: str, allow_pipes: bool) -> ShardSet:
    index = CorpusIndex.read(path)
    if split not in index.splits:
        raise ValueError(f"{path} has no split {split!r} (it has: {', '.join(sorted(index.splits)) or 'none'})")
    shards = []
    for entry in index.splits[split].shards:
        if entry.path.startswith("pipe:") and not allow_pipes:
            raise UntrustedCommand(
                f"{path} lists the shard {entry.path!r}, a shell command from a file; distgan runs it only "
                "when told the index is trusted (data.allow_index_pipes=true, or --allow-index-pipes)")
        url = entry.path if entry.path.startswith("pipe:") else str(path.parent / entry.path)
        if not url.startswith("pipe:") and not Path(url).is_file():
            raise FileNotFoundError(f"shard {url} listed in {path} does not exist")
        shards.append(Shard(url, entry.samples, entry.seconds, _keys(entry.keys)))
    return ShardSet(shards, index.sample_rate, path)


def _keys(keys: list[str] | None) -> tuple[str, ...] | None:
    return None if keys is None else tuple(keys)


def _local_shards(paths: list[Path], spec: str) -> ShardSet:
    """Existing local tars; counts and sample rate are borrowed from an index.json beside them."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise FileNotFoundError(f"shard {missing[0]} does not exist{more}; spec was {spec!r}")
    known: dict[Path, Shard] = {}
    sample_rate = None
    index_path = None
    for folder in sorted({p.resolve().parent for p in paths}):
        if not (folder / INDEX_NAME).is_file():
            continue
        index = CorpusIndex.read(folder / INDEX_NAME)
        for entry in (e for s in index.splits.values() for e in s.shards):
            known[(folder / entry.path).resolve()] = Shard("", entry.samples, entry.seconds, _keys(entry.keys))
        sample_rate, index_path = index.sample_rate, folder / INDEX_NAME
    shards = []
    for p in paths:
        recorded = known.get(p.resolve(), Shard(""))
        shards.append(replace(recorded, url=str(p)))
    all_indexed = all(p.resolve() in known for p in paths)
    return ShardSet(shards, sample_rate if all_indexed else None, index_path if all_indexed else None)


def _concatenate(sets: list[ShardSet]) -> ShardSet:
    """One set of several specs' shards, with the sample rate their indexes agree on."""
    rates = {part.sample_rate: part.index_path for part in sets if part.sample_rate is not None}
    if len(rates) > 1:
        raise ValueError("the shards' indexes disagree on the sample rate: "
                         + ", ".join(f"{rate} Hz in {path}" for rate, path in rates.items()))
    rate, index_path = next(iter(rates.items()), (None, None))
    return ShardSet([shard for part in sets for shard in part.shards], rate, index_path)


def pipe_commands(shards: ShardSet) -> list[str]:
    """The shell commands reading ``shards`` runs (one per ``pipe:`` shard)."""
    return [shard.url.removeprefix("pipe:") for shard in shards.shards if shard.is_pipe]
