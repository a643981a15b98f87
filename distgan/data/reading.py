"""Reading one shard: its samples' bytes, or only their keys (tar headers, no member data).

Samples follow WebDataset's convention: consecutive members sharing a key (the member name up
to the first dot of its basename) form one sample. A sample's index is its position among the
samples the reader keeps (all of them, or those ``keep(key)`` accepts), which is what the epoch
plan's ranges refer to; a sample not kept is passed over without reading its members.

Local shards open seekable, so skipped member data costs a seek; a ``pipe:`` URL runs its
command (WebDataset's ``gopen``) and reads its stdout, skipping by reading.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from distgan.data.format import split_member_name
from distgan.data.tar import TarFormatError, TarMembers

KeyFilter = Callable[[str], bool]


class ShardReadError(OSError):
    """A shard could not be opened or read to its end (missing, truncated, not a tar)."""


@dataclass
class RawSample:
    """An undecoded sample: its key, its position in the shard and its members' bytes by extension."""

    key: str
    index: int
    members: dict[str, bytes]


def _open(url: str) -> tuple[BinaryIO, bool]:
    """A local file opens seekable, so members outside a range are skipped without reading them."""
    if not url.startswith("pipe:"):
        return open(url, "rb"), True  # noqa: SIM115 - closed by the caller's finally
    from webdataset.gopen import gopen  # imported only where pipes are used

    return gopen(url, "rb"), False


_READ_ERRORS = (OSError, TarFormatError, ValueError, EOFError)


def iter_shard(url: str, start: int = 0, stop: int | None = None,
               beyond: Callable[[], None] | None = None, keep: KeyFilter | None = None) -> Iterator[RawSample]:
    """Yield kept samples ``start <= index < stop`` of a shard, reading only their members' bytes.

    ``keep`` (default: every sample) decides from the key alone which samples count. Stops
    reading as soon as ``stop`` is reached; ``beyond`` is called when it finds that the shard
    holds a kept sample at ``stop`` (more than a range ending at the shard's count expects). A
    sample is yielded only once all its members were read; any failure (missing file, garbage,
    truncation, a failing pipe command) raises ``ShardReadError`` after the complete samples
    before it were yielded.
    """
    try:
        stream, seekable = _open(url)
    except _READ_ERRORS as err:
        raise ShardReadError(f"{url}: {type(err).__name__}: {err}") from err
    finished = False
    try:
        members = TarMembers(stream, seekable=seekable)
        current: RawSample | None = None
        previous_key: str | None = None
        index = -1
        for name, _ in members:
            key, ext = split_member_name(name)
            if key is None:
                continue
            if key != previous_key:
                previous_key = key
                if current is not None and current.index >= start:
                    yield current
                current = None
                if keep is not None and not keep(key):
                    continue
                index += 1
                if stop is not None and index >= stop:
                    if beyond is not None:
                        beyond()
                    break
                current = RawSample(key, index, {})
            if current is not None and index >= start:
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


def shard_keys(url: str) -> list[str]:
    """Every sample's key, in tar order, from member headers alone (no member data is read).

    Cheap on a local shard (a seek per member); a ``pipe:`` shard streams through whole.
    """
    try:
        stream, seekable = _open(url)
    except _READ_ERRORS as err:
        raise ShardReadError(f"{url}: cannot list samples ({type(err).__name__}: {err})") from err
    finished = False
    try:
        keys: list[str] = []
        for name, _ in TarMembers(stream, seekable=seekable):
            key = split_member_name(name)[0]
            if key is not None and (not keys or key != keys[-1]):
                keys.append(key)
        finished = True
        return keys
    except _READ_ERRORS as err:
        raise ShardReadError(f"{url}: cannot list samples ({type(err).__name__}: {err})") from err
    finally:
        _close_quietly(stream, check=finished)


def count_samples(shard: str | object) -> int:
    """Count a local shard's samples (a URL, or a ``Shard``) from its member headers alone."""
    url = str(getattr(shard, "url", shard))
    if url.startswith("pipe:"):
        raise ValueError(f"{url}: cannot count a pipe: shard cheaply; pass an index.json with counts")
    return len(shard_keys(url))
