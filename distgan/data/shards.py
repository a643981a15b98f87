"""Which tar shards a run reads, how many samples each holds, and reading samples out of one.

``resolve_shards`` turns the one string a user writes (``data.shards``) into a ``ShardSet``:

- a folder holding ``index.json``, or the path of an ``index.json``: that split's shards, with
  the sample counts the index records (no shard is opened);
- a folder without an index: all its ``*.tar`` files, sorted by name; except that when it holds
  shards named the way ``distgan prepare`` names them (``format.SHARD_NAME``: ``train-000000.tar``,
  ``val-000000.tar``), only the split's own are taken, so that a folder whose index was lost does not train on its
  validation clips (or validate on its training clips);
- a brace pattern (``/data/train-{000000..000099}.tar``) or a single ``.tar`` path;
- ``pipe:`` URLs (``pipe:aws s3 cp s3://b/train-{000..009}.tar -``), brace-expanded and opened
  with WebDataset's ``gopen``, which runs the command and reads its stdout.

Local shards are checked at resolve time, so a typo fails before any process group starts.
Shards without recorded counts are counted by ``count_samples``, which reads tar headers only;
a remote (``pipe:``) shard cannot be counted cheaply, so training on one needs an index.

Samples follow WebDataset's convention: consecutive members sharing a key (the member name up
to the first dot of its basename) form one sample; the key's position in the tar is the
sample's index, which is what the epoch plan's ranges refer to.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

import braceexpand

from distgan.data.format import INDEX_NAME, SHARD_NAME, split_member_name
from distgan.data.index import CorpusIndex
from distgan.data.tar import TarFormatError, TarMembers


@dataclass(frozen=True)
class Shard:
    """One tar file: a local path or a ``pipe:`` URL; counts are ``None`` when not recorded."""

    url: str
    samples: int | None = None
    seconds: float | None = None

    @property
    def is_pipe(self) -> bool:
        return self.url.startswith("pipe:")


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

    def counted(self) -> ShardSet:
        """The same set with every count known: local shards without one are counted from headers.

        Raises ``ValueError`` for an uncounted ``pipe:`` shard: splitting an epoch exactly between
        ranks needs the counts before anything is read, and streaming a remote shard just to
        count it would double the traffic.
        """
        shards = []
        for shard in self.shards:
            if shard.samples is None:
                if shard.is_pipe:
                    raise ValueError(
                        f"{shard.url}: sample count unknown; pipe: shards need an index.json with counts: "
                        "pass data.shards=path/to/index.json, e.g. the one `distgan prepare` wrote with "
                        "each shard path replaced by its pipe: URL"
                    )
                try:
                    shard = replace(shard, samples=count_samples(shard))
                except ShardReadError as err:
                    # Same policy as while streaming: a broken shard is reported, not fatal.
                    warnings.warn(f"{err}; the shard contributes no samples", stacklevel=2)
                    shard = replace(shard, samples=0)
            shards.append(shard)
        return replace(self, shards=shards)


class UntrustedCommand(ValueError):
    """An ``index.json`` lists ``pipe:`` shards, and running commands from a file was not allowed."""


def resolve_shards(spec: str, split: str = "train", allow_index_pipes: bool = False) -> ShardSet:
    """Turn ``data.shards`` (folder, index.json, brace pattern, .tar, ``pipe:`` URL) into shards.

    A ``pipe:`` URL the user wrote is the user's command. A ``pipe:`` shard listed in an
    ``index.json`` is a shell command from a file (which may have come with a downloaded
    corpus): it raises ``UntrustedCommand`` unless ``allow_index_pipes``.

    Raises ``FileNotFoundError`` naming a missing local path, and ``ValueError`` for an index
    without ``split`` or a spec that matches no shard.
    """
    spec = spec.strip()
    if not spec:
        raise ValueError("empty shard spec")
    if spec.startswith("pipe:"):
        return ShardSet([Shard(url) for url in braceexpand.braceexpand(spec)])
    if "{" in spec:
        return _local_shards([Path(p) for p in braceexpand.braceexpand(spec)], spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        if (path / INDEX_NAME).is_file():
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
        shards.append(Shard(url, entry.samples, entry.seconds))
    return ShardSet(shards, index.sample_rate, path)


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
            known[(folder / entry.path).resolve()] = Shard("", entry.samples, entry.seconds)
        sample_rate, index_path = index.sample_rate, folder / INDEX_NAME
    shards = []
    for p in paths:
        recorded = known.get(p.resolve(), Shard(""))
        shards.append(Shard(str(p), recorded.samples, recorded.seconds))
    all_indexed = all(p.resolve() in known for p in paths)
    return ShardSet(shards, sample_rate if all_indexed else None, index_path if all_indexed else None)


# ---------------------------------------------------------------------------------------------
# Reading a tar


class ShardReadError(OSError):
    """A shard could not be opened or read to its end (missing, truncated, not a tar)."""


@dataclass
class RawSample:
    """An undecoded sample: its key, its position in the shard and its members' bytes by extension."""

    key: str
    index: int
    members: dict[str, bytes]


def pipe_commands(shards: ShardSet) -> list[str]:
    """The shell commands reading ``shards`` runs (one per ``pipe:`` shard)."""
    return [shard.url.removeprefix("pipe:") for shard in shards.shards if shard.is_pipe]


def _open(url: str) -> tuple[BinaryIO, bool]:
    """A local file opens seekable, so members outside a range are skipped without reading them."""
    if not url.startswith("pipe:"):
        return open(url, "rb"), True  # noqa: SIM115 - closed by the caller's finally
    from webdataset.gopen import gopen  # imported only where pipes are used

    return gopen(url, "rb"), False


_READ_ERRORS = (OSError, TarFormatError, ValueError, EOFError)


def iter_shard(url: str, start: int = 0, stop: int | None = None,
               beyond: Callable[[], None] | None = None) -> Iterator[RawSample]:
    """Yield samples ``start <= index < stop`` of a shard, reading only their members' bytes.

    Stops reading as soon as ``stop`` is reached; ``beyond`` is called when it finds that the
    shard holds a sample at ``stop`` (more than a range ending at the shard's count expects). A sample is yielded only once all its members
    were read; any failure (missing file, garbage, truncation, a failing pipe command) raises
    ``ShardReadError`` after the complete samples before it were yielded.
    """
    try:
        stream, seekable = _open(url)
    except _READ_ERRORS as err:
        raise ShardReadError(f"{url}: {type(err).__name__}: {err}") from err
    finished = False
    try:
        members = TarMembers(stream, seekable=seekable)
        current: RawSample | None = None
        index = -1
        for name, _ in members:
            key, ext = split_member_name(name)
            if key is None:
                continue
            if current is None or key != current.key:
                if current is not None and current.index >= start:
                    yield current
                index += 1
                if stop is not None and index >= stop:
                    current = None
                    if beyond is not None:
                        beyond()
                    break
                current = RawSample(key, index, {})
            if index >= start:
                current.members[ext] = members.read()
        if current is not None and current.index >= start:
            yield current
        finished = True
    except _READ_ERRORS as err:
        raise ShardReadError(f"{url}: {type(err).__name__}: {err}") from err
    finally:
        _close_quietly(stream, check=finished and stop is None)


def _close_quietly(stream: BinaryIO, *, check: bool) -> None:
    """Close; a pipe closed early dies of SIGPIPE, which is only an error if we read it all."""
    try:
        stream.close()
    except OSError as err:
        if check:
            raise ShardReadError(str(err)) from err


def count_samples(shard: Shard | str) -> int:
    """Count a local shard's samples from its member headers (no member data is read)."""
    url = shard.url if isinstance(shard, Shard) else shard
    if url.startswith("pipe:"):
        raise ValueError(f"{url}: cannot count a pipe: shard cheaply; pass an index.json with counts")
    try:
        with open(url, "rb") as stream:
            count, previous = 0, None
            for name, _ in TarMembers(stream, seekable=True):
                key = split_member_name(name)[0]
                if key is not None and key != previous:
                    count, previous = count + 1, key
            return count
    except _READ_ERRORS as err:
        raise ShardReadError(f"{url}: cannot count samples ({type(err).__name__}: {err})") from err
