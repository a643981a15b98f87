"""Shards other tools wrote: any names, lists of specs, no index; ``distgan index``; the held-out
fraction; and, the other way round, WebDataset reading distgan's own shards."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import webdataset as wds

from distgan.cli import main as distgan_main
from distgan.config import ConfigError, load_config
from distgan.data.holdout import Holdout, is_held_out
from distgan.data.prepare import PrepareOptions, prepare_corpus
from distgan.data.shards import resolve_shards
from distgan.data.stream import TrainStream
from distgan.data.stream.decode import decode_segment, find_audio, read_text
from distgan.data.stream.skips import BadSample
from distgan.distributed import ProcessInfo
from distgan.train import corpus
from tests.data.shard_helpers import encode, sample, tone, write_shard
from tests.train.helpers import TINY

KEYS = [f"utt{s}{i:02d}" for s in range(3) for i in range(6)]
# Pinned: the held-out choice is a fixed function of the key (SHA-1), whatever the process,
# Python version or PYTHONHASHSEED, so every rank and every later run agrees on it.
HELD_OUT = ["utt001", "utt100", "utt101", "utt104", "utt205"]  # of 0.4
SINGLE = ProcessInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"), is_main=True)


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ShardWriter's names, no index: 3 shards of 6 samples, FLAC with a json, WAV without."""
    folder = tmp_path_factory.mktemp("foreign")
    for s in range(3):
        samples = []
        for i in range(6):
            key, audio = f"utt{s}{i:02d}", tone(3000 + 97 * i, seed=10 * s + i)
            samples.append(sample(key, audio) if i % 2 == 0 else {"__key__": key.encode(), "wav": encode(audio, fmt="wav")})
        write_shard(folder / f"shard-{s:06d}.tar", samples)
    return folder


def _stream_keys(shards, world_size: int = 1) -> list[str]:
    """Every key one epoch of every rank yields."""
    keys = []
    for rank in range(world_size):
        stream = TrainStream(shards, sample_rate=8000, segment_samples=1024, batch_size=2, rank=rank,
                             world_size=world_size, seed=0, with_keys=True)
        keys += [key for batch in stream for key in batch["keys"]]
    return keys


def test_held_out_fraction_is_deterministic_disjoint_and_never_trained_on(foreign: Path) -> None:
    assert [key for key in KEYS if is_held_out(key, 0.4)] == HELD_OUT
    assert {k for k in KEYS if is_held_out(k, 0.1)} <= set(HELD_OUT)  # a larger fraction: a superset
    train = resolve_shards(str(foreign)).select(Holdout(0.4, held_out=False)).counted()
    val = resolve_shards(str(foreign)).select(Holdout(0.4, held_out=True)).counted()
    assert [s.samples for s in train.shards] == [5, 3, 5] and val.samples == 5
    trained = _stream_keys(train, world_size=2)
    assert sorted(trained) == sorted(set(KEYS) - set(HELD_OUT))  # each once, none held out

    cfg = load_config(TINY, [f"data.shards={foreign}", "data.val_fraction=0.4", "audio.sample_rate=8000", "audio.fmax=4000",
                             "log.val_clips=3"])
    assert [clip["key"] for clip in corpus.validation_clips(cfg, SINGLE, cfg.data.shards)] == HELD_OUT[:3]


def test_distgan_index_records_counts_and_keys_that_spare_the_next_start(
        foreign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "shards"
    shutil.copytree(foreign, folder)
    assert distgan_main(["index", str(folder)]) == 0
    assert "wrote" in capsys.readouterr().out
    index = json.loads((folder / "index.json").read_text())
    assert index["sample_rate"] == 8000 and index["splits"]["train"]["samples"] == 18
    assert index["splits"]["train"]["shards"][1]["keys"] == KEYS[6:12]
    assert distgan_main(["index", str(folder)]) == 2  # an index is replaced only with --force

    def no_header_reading(url: str) -> list[str]:
        raise AssertionError(f"{url}: read its headers although the index lists its keys")

    monkeypatch.setattr("distgan.data.shards.shard_keys", no_header_reading)
    shards = resolve_shards(str(folder))
    assert shards.sample_rate == 8000 and shards.counted().samples == 18
    assert shards.select(Holdout(0.4, held_out=False)).counted().samples == 13
    assert sorted(_stream_keys(shards)) == KEYS

    pipes = f"pipe:cat {folder}/shard-{{000000..000002}}.tar"
    assert distgan_main(["index", pipes, "--out", str(tmp_path / "pipes.json"), "--no-durations"]) == 0
    piped = resolve_shards(str(tmp_path / "pipes.json"), allow_index_pipes=True)
    assert piped.sample_rate is None and piped.samples == 18 and all(s.is_pipe for s in piped.shards)
    assert sorted(_stream_keys(piped)) == KEYS


def test_lists_of_specs_resolve_and_parse_from_yaml(foreign: Path) -> None:
    first, rest = str(foreign / "shard-000000.tar"), f"{foreign}/shard-{{000001..000002}}.tar"
    shards = resolve_shards([first, rest])
    assert [Path(s.url).name for s in shards.shards] == [f"shard-00000{i}.tar" for i in range(3)]
    # On the command line a list item holding braces is quoted (YAML reads a bare { as a mapping).
    assert load_config(TINY, [f'data.shards=["{first}", "{rest}"]']).data.shards == [first, rest]
    for bad, message in (("data.shards=[]", "at least one"), ("data.val_fraction=1.0", r"\[0, 1\)"),
                         ("data.val_shards=/v", "set one of them")):
        with pytest.raises(ConfigError, match=message):
            load_config(TINY, ["data.val_fraction=0.1", bad] if "val_shards" in bad else [bad])


def test_foreign_shards_at_another_rate_stop_the_start_naming_a_clip(foreign: Path) -> None:
    cfg = load_config(TINY, [f"data.shards={foreign}"])  # audio.sample_rate 22050; the clips are 8000 Hz
    with pytest.raises(ConfigError, match="shard-000000.tar: sample utt000 is 8000 Hz.*audio.sample_rate=8000"):
        corpus.training_shards(cfg, SINGLE, cfg.data.shards)


def test_other_tools_json_names_are_read_and_checked() -> None:
    flac = encode(tone(3000, seed=1))  # 8000 Hz

    def crop(meta: dict) -> np.ndarray:
        return decode_segment(flac, meta, sample_rate=8000, segment_samples=1024, pad_short=False,
                              silence_peak=1e-4, rng=np.random.default_rng(0))

    assert crop({"sample_rate": 8000.0, "samples": 3000}).shape == (1024,)
    with pytest.raises(BadSample, match="json sampling_rate=16000, the audio has 8000") as bad:
        crop({"sampling_rate": 16000})
    assert bad.value.reason == "metadata_mismatch"
    assert read_text({"txt": b"from txt"}, {"transcript": "from json"}) == "from json"
    assert read_text({"text": b" from a text member\n"}, {}) == "from a text member"
    with pytest.raises(BadSample, match="m4a.*convert it to flac"):
        find_audio({"m4a": b"...", "json": b"{}"})


def test_webdataset_reads_distgan_shards_with_their_audio_and_json(tmp_path: Path) -> None:
    source = tmp_path / "wavs"
    source.mkdir()
    clips = {f"clip{i}": tone(4000 + 500 * i, seed=i) for i in range(5)}
    for key, audio in clips.items():
        soundfile.write(source / f"{key}.wav", audio, 8000, subtype="PCM_16")
    prepare_corpus(source, tmp_path / "out", PrepareOptions(val_count=1, normalize="none", progress=False))
    urls = sorted(str(p) for p in (tmp_path / "out").glob("*.tar"))
    read = {s["__key__"]: s for s in wds.WebDataset(urls, shardshuffle=False)}
    assert sorted(read) == sorted(clips)
    for key, members in read.items():
        meta = json.loads(members["json"])
        audio, rate = soundfile.read(io.BytesIO(members["wav"]), dtype="float32")
        assert (meta["key"], meta["sample_rate"], rate, len(audio)) == (key, 8000, 8000, len(clips[key]))
        assert np.abs(audio - clips[key]).max() < 1e-4  # PCM-16
