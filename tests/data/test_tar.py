"""The fast tar header reader agrees with Python's ``tarfile`` and refuses broken archives."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from distgan.data.tar import TarFormatError, TarMembers

LONG_NAME = "deep/" * 30 + "KEY.flac"  # past ustar's 100 + 155 characters


def _archive(tar_format: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as tar:
        folder = tarfile.TarInfo("a_folder")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, data in [("a/k1.flac", b"x" * 700), ("a/k1.json", b"{}"), (LONG_NAME, b"y" * 1025),
                           ("prefix/" * 20 + "k2.wav", b"")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _members(data: bytes, *, seekable: bool, path: Path) -> list[tuple[str, bytes]]:
    path.write_bytes(data)
    with open(path, "rb") as raw:
        stream = raw if seekable else io.BufferedReader(raw)  # a pipe is not seekable; same API
        members = TarMembers(stream, seekable=seekable)
        return [(name, members.read() if name.endswith(("flac", "wav")) else b"") for name, _ in members]


@pytest.mark.parametrize("tar_format", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
@pytest.mark.parametrize("seekable", [True, False])
def test_names_sizes_and_data_match_tarfile(tmp_path: Path, tar_format: int, seekable: bool) -> None:
    try:
        data = _archive(tar_format)
    except ValueError:  # ustar cannot hold the long name
        pytest.skip("format cannot store the long name")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        expected = [(m.name, tar.extractfile(m).read() if m.name.endswith(("flac", "wav")) else b"")
                    for m in tar if m.isfile()]
    assert _members(data, seekable=seekable, path=tmp_path / "x.tar") == expected
    assert expected[2][0] == LONG_NAME


def test_truncated_and_garbage_archives_are_errors(tmp_path: Path) -> None:
    data = _archive(tarfile.PAX_FORMAT)
    inside_data = data.index(b"y" * 1025) + 500
    after_member = data.rindex(b"y") + 1 + (-1025 % 512)  # right after a member, before the end blocks
    for broken in (data[:1500], data[:inside_data], data[:after_member], b"not a tar" * 200, b""):
        with pytest.raises(TarFormatError):
            _members(broken, seekable=True, path=tmp_path / "x.tar")
