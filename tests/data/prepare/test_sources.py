"""How ``distgan prepare`` finds clips: layouts, keys, speakers, texts and what counts as a failure.

Discovery reads no audio, so placeholder files are enough here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distgan.data.prepare.sources import detect_layout, discover


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_layout_detection(tmp_path: Path) -> None:
    touch(tmp_path / "plain" / "a.wav")
    touch(tmp_path / "lj" / "metadata.csv")
    touch(tmp_path / "lj" / "wavs" / "x.wav")
    touch(tmp_path / "only-metadata" / "metadata.csv")
    touch(tmp_path / "list.jsonl")
    assert detect_layout(tmp_path / "plain") == "folder"
    assert detect_layout(tmp_path / "lj") == "ljspeech"
    assert detect_layout(tmp_path / "only-metadata") == "folder"
    assert detect_layout(tmp_path / "list.jsonl") == "jsonl"
    with pytest.raises(FileNotFoundError):
        detect_layout(tmp_path / "missing")


def test_folder_keys_speakers_and_filters(tmp_path: Path) -> None:
    for name in ("top.wav", "spk1/a.flac", "spk1/deep/b c.ogg", "spk2/a.WAV", "spk2/notes.txt",
                 ".hidden.wav", ".cache/x.wav", "spk2/readme"):
        touch(tmp_path / name)
    found = discover(tmp_path)
    assert found.layout == "folder"
    assert [(f.key, f.speaker, f.source) for f in found.files] == [
        ("spk1__a", "spk1", "spk1/a.flac"),
        ("spk1__deep__b_c", "spk1", "spk1/deep/b c.ogg"),
        ("spk2__a", "spk2", "spk2/a.WAV"),
        ("top", None, "top.wav"),
    ]
    assert found.failed == []


def test_colliding_keys_keep_the_first_path(tmp_path: Path) -> None:
    touch(tmp_path / "a.flac")
    touch(tmp_path / "a.wav")
    found = discover(tmp_path)
    assert [f.source for f in found.files] == ["a.flac"]
    assert len(found.failed) == 1 and found.failed[0].path.endswith("a.wav")
    assert "already used" in found.failed[0].reason


def test_names_that_differ_only_in_script_or_punctuation_keep_their_own_keys(tmp_path: Path) -> None:
    names = ["a b.wav", "a_b.wav", "a?b.wav", "ñandú.wav", "日本語.wav", "中文.wav", "Ελληνικά.wav", "a.b.wav"]
    for name in names:
        touch(tmp_path / name)
    found = discover(tmp_path)
    assert found.failed == []
    keys = [f.key for f in found.files]
    assert len(keys) == len(set(keys)) == len(names)  # no two files collapsed into one sample
    # Letters of any script stay as they are; names that would collide get a hash of their own.
    assert {"ñandú", "日本語", "中文", "Ελληνικά"} <= set(keys)
    assert len([key for key in keys if key.startswith("a_b-")]) == 4
    assert discover(tmp_path) == found  # and the same every time


def test_ljspeech_texts_missing_audio_and_bad_rows(tmp_path: Path) -> None:
    (tmp_path / "wavs").mkdir()
    for clip_id in ("LJ1", "LJ2", "LJ3"):
        touch(tmp_path / "wavs" / f"{clip_id}.wav")
    (tmp_path / "metadata.csv").write_text(
        'LJ1|Dr. "quoted" 1|Doctor "quoted" one\n'
        "LJ2|raw only\n"
        "LJ9|no audio|no audio\n"
        "not a row\n", encoding="utf-8")
    found = discover(tmp_path)
    assert found.layout == "ljspeech"
    by_key = {f.key: f for f in found.files}
    assert sorted(by_key) == ["LJ1", "LJ2", "LJ3"]
    assert (by_key["LJ1"].text, by_key["LJ1"].text_raw) == ('Doctor "quoted" one', 'Dr. "quoted" 1')
    assert (by_key["LJ2"].text, by_key["LJ2"].text_raw) == ("raw only", None)
    assert by_key["LJ3"].text is None and by_key["LJ3"].speaker is None
    failed = sorted((f.path, f.reason) for f in found.failed)
    assert [path for path, _ in failed] == [f"{tmp_path / 'metadata.csv'}:4", str(tmp_path / "wavs" / "LJ9.wav")]
    assert "no audio file" in failed[1][1]


def test_manifest_paths_text_speaker_and_bad_lines(tmp_path: Path) -> None:
    touch(tmp_path / "lists" / "audio" / "one.wav")
    elsewhere = touch(tmp_path / "other" / "two.wav")
    lines = [
        json.dumps({"audio": "audio/one.wav", "text": "hello", "speaker": "ann"}),
        "",
        json.dumps({"audio": str(elsewhere), "speaker": 7}),
        "{not json",
        json.dumps({"text": "no audio"}),
        json.dumps({"audio": "audio/missing.wav"}),
        json.dumps({"audio": "audio/one.wav", "text": 3}),
    ]
    manifest = tmp_path / "lists" / "m.jsonl"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    found = discover(manifest)
    assert found.layout == "jsonl"
    assert [(f.key, f.text, f.speaker) for f in found.files] == [
        ("audio__one", "hello", "ann"),
        ("other__two", None, "7"),
    ]
    assert sorted(f.path for f in found.failed) == [f"{manifest}:{n}" for n in (4, 5, 6, 7)]
