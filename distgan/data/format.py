"""The names and numbers that corpus preparation and the training stream must agree on.

Preparation writes what these constants say and the stream reads it back, so each lives here
once: a corpus folder holds ``{split}-{NNNNNN}.tar`` shards plus one ``index.json`` (``index.py``);
each sample is a group of tar members sharing a key (WebDataset's convention: the member name up
to the first dot of its basename), with keys made of letters (any script), digits, ``_`` and ``-``.
"""

from __future__ import annotations

import hashlib
import os
import re

INDEX_NAME = "index.json"
SPLITS: tuple[str, ...] = ("train", "val")
# ``distgan prepare``'s shard names: the split, then a six-digit number.
SHARD_NAME = re.compile(r"^(?P<split>train|val)-(?P<number>\d{6})\.tar$")

# Formats ``distgan prepare`` writes (both PCM-16 mono).
WRITTEN_AUDIO_FORMATS: tuple[str, ...] = ("wav", "flac")
# Extensions of audio that soundfile (libsndfile) reads: what ``prepare`` and ``evaluate`` take
# from a folder, and what the stream accepts as a sample's audio member.
AUDIO_EXTENSIONS: tuple[str, ...] = (
    "wav", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "aifc", "au", "caf", "w64",
)

# Below this peak (-80 dBFS, about 3 LSB of PCM-16) a clip is silence. ``prepare`` refuses such
# clips and the stream skips them, with the same threshold, so nothing prepare writes is skipped.
SILENCE_PEAK = 1e-4

_KEY_UNSAFE = re.compile(r"[^\w-]+")  # \w: letters and digits of every script, and "_"
_KEY_AND_EXT = re.compile(r"^((?:.*/|)[^./][^.]*)\.([^/]*)$")


def shard_name(split: str, number: int) -> str:
    return f"{split}-{number:06d}.tar"


def is_audio_extension(ext: str) -> bool:
    """``"wav"``, ``"seg.FLAC"``, ``".mp3"``: the last dotted part, case-insensitive."""
    return ext.lower().rsplit(".", 1)[-1] in AUDIO_EXTENSIONS


def safe_key(name: str) -> str:
    """Turn a relative path or id into a WebDataset-safe key ("a/b.c d" -> "a__b_c_d").

    Several names can give one key ("a b" and "a_b"); ``unique_key`` tells them apart.
    """
    name = name.replace("/", "__").replace(os.sep, "__")
    return _KEY_UNSAFE.sub("_", name).strip("_") or "sample"


def unique_key(name: str) -> str:
    """``safe_key`` plus a short hash of ``name``: for names whose safe keys collide."""
    return f"{safe_key(name)}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def split_member_name(name: str) -> tuple[str | None, str]:
    """``"dir/KEY.seg.flac"`` -> ``("dir/KEY", "seg.flac")``; ``(None, "")`` for names without one."""
    match = _KEY_AND_EXT.match(name)
    return (match.group(1), match.group(2)) if match else (None, "")
