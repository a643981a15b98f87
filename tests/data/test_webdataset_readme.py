"""docs/data.md's "Your own WebDataset shards" holds: its ShardWriter code, run as printed on a folder
of mixed formats (some clips with a json, some with a transcript, some bare), writes shards that
the stream decodes whole and that ``distgan train`` trains on, as the page's command does."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import soundfile

from distgan.data.holdout import is_held_out
from distgan.data.shards import resolve_shards
from distgan.data.stream import TrainStream
from distgan.data.stream.utterances import iter_utterances
from tests.conftest import REPO_ROOT
from tests.data.shard_helpers import tone
from tests.train.helpers import run_distgan, train_args

RATE = 16000  # Opus decodes at 8, 12, 16, 24 or 48 kHz only
# (relative path, soundfile format, subtype, sidecar): every format docs/data.md names.
CLIPS = [
    ("a/one.wav", "WAV", "PCM_16", "json"), ("a/two.flac", "FLAC", "PCM_16", "txt"),
    ("b/three.mp3", "MP3", "MPEG_LAYER_III", "json"), ("b/four.ogg", "OGG", "VORBIS", None),
    ("b/five.opus", "OGG", "OPUS", "txt"), ("take.2.wav", "WAV", "FLOAT", None),
    ("c/six.flac", "FLAC", "PCM_24", None), ("c/seven.mp3", "MP3", "MPEG_LAYER_III", "txt"),
    ("c/eight.ogg", "OGG", "VORBIS", "json"), ("c/nine.opus", "OGG", "OPUS", None),
]
KEYS = ["a__one", "a__two", "b__three", "b__four", "b__five", "take_2", "c__six", "c__seven", "c__eight", "c__nine"]


def readme_snippet() -> str:
    page = (REPO_ROOT / "docs" / "data.md").read_text()
    section = re.search(r"^## Your own WebDataset shards\n(.*?)(?=^## |\Z)", page, re.M | re.S)
    assert section, "docs/data.md lost its 'Your own WebDataset shards' section"
    return re.search(r"```python\n(.*?)```", section.group(1), re.S).group(1)


def write_audio_folder(root: Path) -> None:
    for number, (name, fmt, subtype, sidecar) in enumerate(CLIPS):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        soundfile.write(buffer, tone(RATE * 6 // 10, seed=number, sample_rate=RATE), RATE, format=fmt, subtype=subtype)
        path.write_bytes(buffer.getvalue())
        if sidecar == "json":
            path.with_suffix(".json").write_text(json.dumps({"sample_rate": RATE, "text": f"clip {number}"}))
        elif sidecar == "txt":
            path.with_suffix(".txt").write_text(f"clip {number}\n")


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/data.md's code, run as printed in a folder holding ``my-audio/``; 4 samples a shard."""
    root = tmp_path_factory.mktemp("readme")
    write_audio_folder(root / "my-audio")
    code = readme_snippet()
    assert "maxcount=1000" in code
    exec_in(root, code.replace("maxcount=1000", "maxcount=4"))
    return root / "my-shards"


def exec_in(folder: Path, code: str) -> None:
    import os

    before = os.getcwd()
    os.chdir(folder)
    try:
        exec(compile(code, "docs/data.md", "exec"), {"__name__": "readme"})
    finally:
        os.chdir(before)


def test_readme_code_writes_shards_the_stream_decodes_whole(shards: Path) -> None:
    assert sorted(p.name for p in shards.iterdir()) == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    stream = TrainStream(resolve_shards(str(shards)), sample_rate=RATE, segment_samples=4096, batch_size=10,
                         rank=0, world_size=1, seed=0, with_keys=True)
    (batch,) = list(stream)
    assert sorted(batch["keys"]) == sorted(KEYS) and batch["skips"].sum() == 0  # every format decoded
    texts = {clip["key"]: clip["text"] for clip in iter_utterances(resolve_shards(str(shards)), sample_rate=RATE,
                                                                  rank=0, world_size=1)}
    assert {key: texts[key] for key in ("a__one", "a__two", "b__four")} == {"a__one": "clip 0", "a__two": "clip 1",
                                                                           "b__four": None}


@pytest.mark.slow
def test_distgan_train_runs_on_the_readme_shards_with_a_held_out_fraction(shards: Path, tmp_path: Path) -> None:
    done = run_distgan(train_args(tmp_path / "run", f"data.shards={shards}", "data.val_fraction=0.2",
                                  f"audio.sample_rate={RATE}", "train.max_steps=2"))
    held_out = [key for key in KEYS if is_held_out(key, 0.2)]
    assert 0 < len(held_out) < len(KEYS)
    assert f"counted {len(KEYS) - len(held_out)} training samples in 3 shards without an index" in done.stdout
    assert "done at step 2" in done.stdout
