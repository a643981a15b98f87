"""Finding the clips of a corpus: a folder of audio files, an LJSpeech folder, or a JSONL manifest.

Each layout becomes a list of ``SourceFile`` sorted by key, plus ``Failure`` entries for inputs
that are named but unusable (a metadata row without its wav, a malformed manifest line, two files
whose keys collide). Layouts:

- **folder**: every file below SRC whose extension is in ``format.AUDIO_EXTENSIONS``, recursively
  (hidden files and folders skipped). Key: ``safe_key`` of the path relative to SRC without its
  extension (a name that is not UTF-8: its bytes as ``\\xNN``, and recorded in the sample's json
  as ``source_bytes``). Folder symlinks are followed, each real folder once (a link that loops
  is listed in ``failed``). Speaker: the first folder below SRC (``SRC/spk1/a/b.wav`` -> ``spk1``); files
  directly in SRC have no speaker (``null``).
- **ljspeech** (detected when SRC holds ``metadata.csv`` and ``wavs/``): every audio file in
  ``wavs/``, with text from the ``id|text|normalized`` rows where there is one. The normalized
  column is the text, the raw one is kept as ``text_raw``. A row whose audio file is missing is a
  failure. No speaker (LJSpeech has one).
- **jsonl** (SRC ends in ``.jsonl``): one ``{"audio": path, "text": ..., "speaker": ...}`` per
  line, text and speaker optional, relative paths relative to the manifest's folder. A malformed
  line or a missing file is a failure naming ``manifest.jsonl:LINE``; the other lines are used.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile

from distgan.data.audiofile import SOUNDFILE_ERRORS, audio_files
from distgan.data.format import safe_key, unique_key
from distgan.data.prepare.convert import ClipError, Failure, read_audio_file

LJSPEECH_METADATA = "metadata.csv"
LJSPEECH_AUDIO = "wavs"


@dataclass(frozen=True)
class SourceFile:
    """One audio file to convert; satisfies ``distgan.data.clips.ClipJob``."""

    key: str
    path: str
    source: str
    speaker: str | None = None
    text: str | None = None
    text_raw: str | None = None
    source_bytes: str | None = None  # the file name's bytes (hex) when they are not UTF-8

    def load(self) -> tuple[np.ndarray, int]:
        return read_audio_file(self.path)


@dataclass
class Discovery:
    layout: str
    files: list[SourceFile] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)


def detect_layout(src: Path) -> str:
    """``"jsonl"``, ``"ljspeech"`` or ``"folder"``; ``FileNotFoundError`` when SRC is neither."""
    if src.is_file() and src.suffix.lower() == ".jsonl":
        return "jsonl"
    if not src.is_dir():
        raise FileNotFoundError(f"{src} is neither a folder nor a .jsonl manifest")
    if (src / LJSPEECH_METADATA).is_file() and (src / LJSPEECH_AUDIO).is_dir():
        return "ljspeech"
    return "folder"


def discover(src: Path) -> Discovery:
    """The clips of SRC in key order, whatever its layout."""
    layout = detect_layout(src)
    if layout == "jsonl":
        found = read_manifest(src)
    elif layout == "ljspeech":
        found = scan_ljspeech(src)
    else:
        found = scan_folder(src)
    found.files = _unique_keys(found.files, found.failed)
    return found


def scan_folder(src: Path) -> Discovery:
    files, left_out = [], []
    for path in audio_files(src, left_out):
        relative = path.relative_to(src)
        speaker = relative.parts[0] if len(relative.parts) > 1 else None
        name, raw = readable_name(relative.as_posix())
        files.append(SourceFile(safe_key(readable_name(relative.with_suffix("").as_posix())[0]), str(path),
                                name, None if speaker is None else readable_name(speaker)[0], source_bytes=raw))
    return Discovery("folder", files, [Failure(path, reason) for path, reason in left_out])


def readable_name(name: str) -> tuple[str, str | None]:
    """A file name as text, and its bytes (hex) when they are not UTF-8: such a name reaches
    Python with surrogates, which no UTF-8 text (json, a key) can hold; its undecodable bytes
    are written as ``\\xNN`` instead, e.g. ``caf\\xe9.wav`` for the Latin-1 ``café.wav``."""
    raw = os.fsencode(name)
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), raw.hex()


def scan_ljspeech(src: Path) -> Discovery:
    found = Discovery("ljspeech")
    metadata_path = src / LJSPEECH_METADATA
    texts: dict[str, tuple[str, str | None]] = {}
    for number, line in enumerate(metadata_path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        # Plain splitting, not the csv module: LJSpeech's texts hold unbalanced quotes.
        columns = line.split("|")
        where = f"{metadata_path}:{number}"
        if len(columns) < 2 or not columns[0].strip():
            found.failed.append(Failure(where, "expected 'id|text|normalized text'"))
            continue
        clip_id, raw = columns[0].strip(), columns[1]
        normalized = columns[2] if len(columns) > 2 and columns[2].strip() else None
        if clip_id in texts:
            found.failed.append(Failure(where, f"duplicate id {clip_id!r}"))
            continue
        texts[clip_id] = (normalized, raw) if normalized is not None else (raw, None)
    audio_folder = src / LJSPEECH_AUDIO
    seen = set()
    for path in audio_files(audio_folder):
        clip_id = path.relative_to(audio_folder).with_suffix("").as_posix()
        seen.add(clip_id)
        text, text_raw = texts.get(clip_id, (None, None))
        found.files.append(SourceFile(safe_key(clip_id), str(path), path.relative_to(src).as_posix(),
                                      None, text, text_raw))
    for clip_id in sorted(set(texts) - seen):
        found.failed.append(Failure(str(audio_folder / f"{clip_id}.wav"),
                                    f"listed in {LJSPEECH_METADATA} but no audio file in {LJSPEECH_AUDIO}/"))
    return found


def read_manifest(manifest: Path) -> Discovery:
    found = Discovery("jsonl")
    for number, line in enumerate(manifest.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{manifest}:{number}"
        try:
            entry = _manifest_entry(manifest.parent, line)
        except ValueError as err:
            found.failed.append(Failure(where, str(err)))
            continue
        if not Path(entry.path).is_file():
            found.failed.append(Failure(where, f"no such audio file: {entry.path}"))
            continue
        found.files.append(entry)
    return found


def _manifest_entry(folder: Path, line: str) -> SourceFile:
    """One manifest line as a ``SourceFile``; ``ValueError`` says what is wrong with it."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON: {err}") from err
    if not isinstance(row, dict) or not isinstance(row.get("audio"), str) or not row["audio"]:
        raise ValueError('expected an object with an "audio" path')
    text, speaker = row.get("text"), row.get("speaker")
    if text is not None and not isinstance(text, str):
        raise ValueError(f'"text" must be a string, got {text!r}')
    if speaker is not None and not isinstance(speaker, (str, int)):
        raise ValueError(f'"speaker" must be a string, got {speaker!r}')
    path = folder / row["audio"]
    relative = Path(os.path.relpath(path, folder))
    return SourceFile(safe_key(relative.with_suffix("").as_posix()), str(path), row["audio"],
                      None if speaker is None else str(speaker), text)


def _unique_keys(files: list[SourceFile], failed: list[Failure]) -> list[SourceFile]:
    """One file per key, sorted by key. Different names that make one safe key ("a b.wav",
    "a_b.wav", names in other scripts) each get a hashed key of their own; copies of one clip
    in several formats (``a.wav`` and ``a.flac``) keep the first by path and report the rest."""
    by_key: dict[str, list[SourceFile]] = {}
    for item in files:
        by_key.setdefault(item.key, []).append(item)
    kept: dict[str, SourceFile] = {}
    for key, group in by_key.items():
        names = {_name(item) for item in group}
        for item in sorted(group, key=lambda f: f.path):
            unique = key if len(names) == 1 else unique_key(_name(item))
            if unique in kept:
                failed.append(Failure(item.path, f"key {unique!r} already used by {kept[unique].path}"))
            else:
                kept[unique] = dataclasses.replace(item, key=unique)
    return [kept[key] for key in sorted(kept)]


def _name(item: SourceFile) -> str:
    """What the clip was called before its key was made safe: its source without the extension."""
    return Path(item.source).with_suffix("").as_posix() if Path(item.source).suffix else item.source


@dataclass(frozen=True)
class Probe:
    """What a file's header says, read before any decoding to choose the corpus sample rate."""

    sample_rate: int
    frames: int
    channels: int


def probe(item: SourceFile) -> Probe:
    """Read a file's header; ``ClipError`` when it is empty or unreadable."""
    try:
        if os.path.getsize(item.path) == 0:
            raise ClipError("empty file (0 bytes)")
        info = soundfile.info(os.fsencode(item.path))
    except SOUNDFILE_ERRORS as err:
        raise ClipError(f"unreadable: {type(err).__name__}: {err}") from err
    if info.frames == 0:
        raise ClipError("empty: no audio frames")
    return Probe(int(info.samplerate), int(info.frames), int(info.channels))
