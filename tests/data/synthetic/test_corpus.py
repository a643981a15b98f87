"""The built-in synthetic corpus: deterministic, speech-like, cached once and safe under races.

This module stays light (no torch, no webdataset): the race test's spawned children import it.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile

from distgan.cli import main as cli_main
from distgan.data.format import INDEX_NAME
from distgan.data.index import CorpusIndex
from distgan.data.synthetic import corpus as synthetic
from distgan.data.synthetic import default_cache_dir, ensure_synthetic_corpus, synthesize_corpus

SMALL = dict(sample_rate=16000, speakers=2, utterances=6, seed=3)


def read_corpus(out: Path) -> dict[str, tuple[dict, np.ndarray]]:
    """``{key: (json, float audio [frames])}`` over every split of the index."""
    found: dict[str, dict[str, bytes]] = {}
    for split in CorpusIndex.read(out).splits.values():
        for shard in split.shards:
            with tarfile.open(out / shard.path) as tar:
                for member in tar.getmembers():
                    key, _, ext = member.name.partition(".")
                    found.setdefault(key, {})[ext] = tar.extractfile(member).read()  # type: ignore[union-attr]
    return {key: (json.loads(m["json"]), soundfile.read(io.BytesIO(m["wav"]), dtype="float32")[0])
            for key, m in found.items()}


def shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.tar"))}


@pytest.fixture(scope="module")
def default_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_corpus(tmp_path_factory.mktemp("synthetic"))


def test_default_corpus_counts_durations_and_speakers(default_corpus: Path) -> None:
    index = CorpusIndex.read(default_corpus)
    clips = read_corpus(default_corpus)
    assert index.sample_rate == 22050 and index.source == "synthetic" and index.failed == []
    assert index.splits["train"].samples == 44 and index.splits["val"].samples == 4
    assert len(clips) == 48
    assert abs(sum(s.seconds for s in index.splits.values()) - sum(m["duration"] for m, _ in clips.values())) < 1e-3
    for info, audio in clips.values():
        assert 1.0 <= info["duration"] <= 4.0
        assert info["samples"] == len(audio) and info["sample_rate"] == 22050
    speakers = [info["speaker"] for info, _ in clips.values()]
    assert {s: speakers.count(s) for s in set(speakers)} == {f"synth-spk{i}": 12 for i in range(4)}


def test_audio_is_speech_like(default_corpus: Path) -> None:
    f0_by_speaker: dict[str, list[float]] = {}
    for info, audio in read_corpus(default_corpus).values():
        assert np.sqrt(np.mean(audio**2)) > 0.02
        power = np.abs(np.fft.rfft(audio)) ** 2
        freqs = np.fft.rfftfreq(len(audio), 1 / 22050)
        assert power[(freqs > 80) & (freqs < 8000)].sum() > 0.9 * power.sum()
        # Not just low-passed noise: some energy above 2 kHz too (formants, fricatives).
        assert power[freqs > 2000].sum() > 1e-3 * power.sum()
        f0_by_speaker.setdefault(info["speaker"], []).append(loudest_frame_f0(audio, 22050))
    medians = [np.median(f0_by_speaker[f"synth-spk{i}"]) for i in range(4)]
    assert medians == sorted(medians) and medians[-1] > 1.5 * medians[0]
    assert medians[0] > 60 and medians[-1] < 400


def loudest_frame_f0(audio: np.ndarray, rate: int, frame: int = 2048) -> float:
    """Pitch of the loudest frame from its autocorrelation peak between 60 and 400 Hz."""
    starts = range(0, len(audio) - frame, frame // 4)
    start = max(starts, key=lambda s: float(np.sum(audio[s:s + frame] ** 2)))
    chunk = audio[start:start + frame] - audio[start:start + frame].mean()
    correlation = np.correlate(chunk, chunk, mode="full")[frame - 1:]
    low, high = rate // 400, rate // 60
    return rate / (low + int(np.argmax(correlation[low:high])))


def test_same_seed_same_bytes_other_seed_other_audio(tmp_path: Path) -> None:
    synthesize_corpus(tmp_path / "a", **SMALL)
    synthesize_corpus(tmp_path / "b", **SMALL)
    synthesize_corpus(tmp_path / "c", **{**SMALL, "seed": 4})
    assert shard_bytes(tmp_path / "a") == shard_bytes(tmp_path / "b")
    assert (tmp_path / "a" / INDEX_NAME).read_bytes() == (tmp_path / "b" / INDEX_NAME).read_bytes()
    first, other = read_corpus(tmp_path / "a"), read_corpus(tmp_path / "c")
    assert first.keys() == other.keys()
    assert not any(np.array_equal(first[k][1], other[k][1]) for k in first)


def test_cli_synthetic_matches_the_api(tmp_path: Path) -> None:
    code = cli_main(["prepare", "--synthetic", str(tmp_path / "cli"), "--sample-rate", "16000", "--speakers", "2",
                     "--utterances", "6", "--seed", "3", "--no-progress"])
    assert code == 0
    synthesize_corpus(tmp_path / "api", **SMALL)
    assert shard_bytes(tmp_path / "cli") == shard_bytes(tmp_path / "api")
    assert len(shard_bytes(tmp_path / "cli")) == 2


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DISTGAN_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("DISTGAN_CACHE")
    assert default_cache_dir() == tmp_path / "xdg" / "distgan"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "distgan"


def test_ensure_writes_once_then_reuses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = ensure_synthetic_corpus(**SMALL, cache_dir=tmp_path)
    written = (folder / INDEX_NAME).stat().st_mtime_ns
    assert CorpusIndex.read(folder).splits["train"].samples == 2  # 6 clips, 4 held out

    def must_not_run(*args: object, **kwargs: object) -> Path:
        raise AssertionError("the cached corpus was written again")

    monkeypatch.setattr(synthetic, "synthesize_corpus", must_not_run)
    assert ensure_synthetic_corpus(**SMALL, cache_dir=tmp_path) == folder
    assert (folder / INDEX_NAME).stat().st_mtime_ns == written
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]


def test_ensure_discards_its_copy_when_another_process_won(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    real = synthetic.synthesize_corpus
    target = tmp_path / synthetic.cache_name(**SMALL)

    def lose_the_race(out_dir: Path, **kwargs: object) -> Path:
        real(target, **kwargs)  # the other process finishes first ...
        (target / "winner").touch()
        return real(out_dir, **kwargs)  # ... while this one is still writing

    monkeypatch.setattr(synthetic, "synthesize_corpus", lose_the_race)
    assert ensure_synthetic_corpus(**SMALL, cache_dir=tmp_path) == target
    assert (target / "winner").exists()
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def _ensure_in_child(cache_dir: str, barrier: threading.Barrier, results: multiprocessing.Queue) -> None:
    """Both children start writing at the same moment, then report the folder they got."""
    barrier.wait()
    results.put(str(ensure_synthetic_corpus(**SMALL, cache_dir=cache_dir)))


@pytest.mark.slow
def test_ensure_is_safe_when_processes_race(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    children = [context.Process(target=_ensure_in_child, args=(str(tmp_path), barrier, results))
                for _ in range(2)]
    for child in children:
        child.start()
    paths = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    assert paths[0] == paths[1]
    folder = Path(paths[0])
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]
    index = CorpusIndex.read(folder)
    assert sum(s.samples for s in index.splits.values()) == 6
    listed = {s.path for split in index.splits.values() for s in split.shards}
    assert {p.name for p in folder.iterdir()} == {INDEX_NAME} | listed
