"""A small, fast reader of tar member headers, for streaming samples out of shards.

Python's ``tarfile`` spends ~0.1 ms per member parsing every header field (and the PAX
header WebDataset's writer adds to each member), which is as much as decoding a training
segment. A shard reader needs only each member's name and size, so this module parses just
those, and skips unread data with a seek on local files (or by reading on pipes).

Supported: ustar/POSIX headers (with ``prefix``), PAX ``path``/``size`` records, GNU long
names; directories, links and other non-file members are passed over. Every header's checksum
is verified, so garbage is an error, not a stream of nonsense; so is a file that ends before
its end-of-archive blocks (a truncated copy), after the complete members before it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
_FILE_TYPES = (b"0", b"\0", b"7")
_CHUNK = 1 << 20


class TarFormatError(ValueError):
    """The bytes are not a (complete) tar archive."""


def _octal(field: bytes) -> int:
    if field[:1] and field[0] & 0x80:  # GNU base-256 for large values
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text, 8) if text else 0
    except ValueError as err:
        raise TarFormatError(f"invalid number field {field!r}") from err


def _pax_records(data: bytes) -> dict[str, str]:
    """``"LEN key=value\\n"`` records (POSIX.1-2001)."""
    records, pos = {}, 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        length = int(data[pos:space])
        key, _, value = data[space + 1: pos + length - 1].partition(b"=")
        records[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        pos += length
    return records


class TarMembers:
    """Iterate ``(name, size)`` of the regular files in a tar; ``read()`` the current one's data.

    Data not read before advancing is skipped. ``seekable`` streams (local files) skip with
    ``seek``; others (pipes) read and discard.
    """

    def __init__(self, fileobj: BinaryIO, *, seekable: bool) -> None:
        self.fileobj = fileobj
        self.seekable = seekable
        self.file_size = os.fstat(fileobj.fileno()).st_size if seekable else None
        self._left = 0  # unread data bytes of the current member
        self._padding = 0

    def _read_exact(self, size: int) -> bytes:
        data = self.fileobj.read(size)
        if len(data) != size:
            raise TarFormatError(f"unexpected end of file (truncated tar): wanted {size} bytes, got {len(data)}")
        return data

    def _skip(self, size: int) -> None:
        if size <= 0:
            return
        if self.seekable:
            position = self.fileobj.seek(size, os.SEEK_CUR)
            if self.file_size is not None and position > self.file_size:
                raise TarFormatError("unexpected end of file (truncated tar)")
            return
        while size > 0:
            size -= len(self._read_exact(min(size, _CHUNK)))

    def read(self) -> bytes:
        """The current member's data (once)."""
        data = self._read_exact(self._left)
        self._left = 0
        return data

    def __iter__(self) -> Iterator[tuple[str, int]]:
        long_name: str | None = None
        pax: dict[str, str] = {}
        while True:
            self._skip(self._left + self._padding)
            self._left = self._padding = 0
            header = self.fileobj.read(BLOCK)
            if header == _ZERO_BLOCK:
                return
            if len(header) != BLOCK:
                raise TarFormatError("unexpected end of file (truncated tar, no end-of-archive block)")
            stored = _octal(header[148:156])
            if stored != sum(header) - sum(header[148:156]) + 8 * 32:
                raise TarFormatError("invalid tar header checksum (not a tar file, or corrupted)")
            name = header[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
            if header[257:262] == b"ustar" and header[345] != 0:
                name = header[345:500].split(b"\0", 1)[0].decode("utf-8", "replace") + "/" + name
            size = _octal(header[124:136])
            kind = header[156:157]
            if kind in _FILE_TYPES and "size" in pax:
                size = int(pax["size"])
            self._left, self._padding = size, -size % BLOCK
            if kind == b"x":
                pax = _pax_records(self.read())
            elif kind == b"L":
                long_name = self.read().split(b"\0", 1)[0].decode("utf-8", "replace")
            elif kind in _FILE_TYPES:
                name = pax.get("path", long_name or name)
                long_name, pax = None, {}
                yield name, size
            elif kind != b"g":
                long_name, pax = None, {}
