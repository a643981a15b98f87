"""``distgan prepare`` on real files: the shards it writes are read back with tarfile and soundfile."""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio.functional
import webdataset as wds

from distgan.cli import main as cli_main
from distgan.data.index import CorpusIndex
from distgan.data.prepare import PrepareOptions, prepare_corpus

QUIET = PrepareOptions(progress=False)


def read_split(out: Path, split: str) -> dict[str, dict[str, bytes]]:
    """``{key: {extension: bytes}}`` for one split, from the shards listed in ``index.json``."""
    samples: dict[str, dict[str, bytes]] = {}
    for shard in CorpusIndex.read(out).splits[split].shards:
        with tarfile.open(out / shard.path) as tar:
            for member in tar.getmembers():
                key, _, ext = member.name.partition(".")
                samples.setdefault(key, {})[ext] = tar.extractfile(member).read()  # type: ignore[union-attr]
    return samples


def read_corpus(out: Path) -> dict[str, dict[str, bytes]]:
    index = CorpusIndex.read(out)
    return {key: members for split in index.splits for key, members in read_split(out, split).items()}


def decode(members: dict[str, bytes]) -> tuple[np.ndarray, int]:
    """The sample's audio as int16 ``[frames]`` and its rate."""
    audio = members.get("flac", members.get("wav"))
    assert audio is not None, f"no audio member in {sorted(members)}"
    pcm, rate = soundfile.read(io.BytesIO(audio), dtype="int16")
    return pcm, rate


def meta(members: dict[str, bytes]) -> dict:
    return json.loads(members["json"])


def shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.tar"))}


# ---------------------------------------------------------------------------------------------
# ljspeech-mini (24 wavs, metadata for the first 8)


def test_ljspeech_counts_durations_and_json(ljspeech_mini: Path, tmp_path: Path) -> None:
    index = prepare_corpus(ljspeech_mini, tmp_path, QUIET)
    wavs = sorted((ljspeech_mini / "wavs").glob("*.wav"))
    infos = {p.stem: soundfile.info(str(p)) for p in wavs}
    on_disk = CorpusIndex.read(tmp_path)
    assert on_disk.sample_rate == 22050 and on_disk.audio_format == "wav"
    assert on_disk.failed == [] and index.failed == []
    assert sum(s.samples for s in on_disk.splits.values()) == len(wavs) == 24
    assert on_disk.splits["val"].samples == 4
    total = sum(s.seconds for s in on_disk.splits.values())
    assert abs(total - sum(i.duration for i in infos.values())) < 1e-3
    samples = read_corpus(tmp_path)
    assert set(samples) == set(infos)
    for key, members in samples.items():
        info, pcm = meta(members), decode(members)[0]
        assert info["samples"] == len(pcm) == infos[key].frames
        assert info["sample_rate"] == 22050 and info["channels"] == 1 and info["speaker"] is None
        assert info["source"] == f"wavs/{key}.wav"
        # Peak-normalised to -1 dBFS, and the stored peak is the one the decoder sees.
        assert info["peak"] == np.abs(pcm.astype(np.int32)).max() / 32768
        assert abs(info["peak"] - 10 ** (-1 / 20)) < 1e-4
    assert on_disk.options["normalize"] == "peak" and on_disk.options["val_count"] == 4


def test_ljspeech_text_survives(ljspeech_mini: Path, tmp_path: Path) -> None:
    prepare_corpus(ljspeech_mini, tmp_path, QUIET)
    rows = [line.split("|") for line in (ljspeech_mini / "metadata.csv").read_text().splitlines()]
    samples = read_corpus(tmp_path)
    with_text = {key for key, members in samples.items() if "text" in meta(members)}
    assert with_text == {row[0] for row in rows} and len(with_text) == 8
    for clip_id, raw, normalized in rows:
        members = samples[clip_id]
        assert meta(members)["text"] == normalized and meta(members)["text_raw"] == raw
        assert members["txt"].decode("utf-8") == normalized
    assert all("txt" not in members for key, members in samples.items() if key not in with_text)


def test_webdataset_reads_the_shards(ljspeech_mini: Path, tmp_path: Path) -> None:
    index = prepare_corpus(ljspeech_mini, tmp_path, QUIET)
    urls = [str(tmp_path / s.path) for s in index.splits["train"].shards]
    samples = list(wds.WebDataset(urls, shardshuffle=False))
    assert [s["__key__"] for s in samples] == sorted(read_split(tmp_path, "train"))
    assert all({"wav", "json"} <= set(s) for s in samples)
    assert sum("txt" in s for s in samples) == sum("text" in meta(m) for m in read_split(tmp_path, "train").values())


def test_validation_split_is_stable_and_follows_the_fraction(ljspeech_mini: Path, tmp_path: Path) -> None:
    def val_keys(name: str, options: PrepareOptions) -> set[str]:
        prepare_corpus(ljspeech_mini, tmp_path / name, options)
        return set(read_split(tmp_path / name, "val"))

    quarter = dataclasses.replace(QUIET, val_fraction=0.25)
    first, again = val_keys("a", quarter), val_keys("b", quarter)
    assert first == again and 0 < len(first) < 24
    assert not set(read_split(tmp_path / "a", "train")) & first
    half = val_keys("c", dataclasses.replace(QUIET, val_fraction=0.5))
    assert half != first and first <= half  # a clip's hash is fixed: a larger fraction adds clips
    counted = val_keys("d", dataclasses.replace(QUIET, val_count=3))
    assert len(counted) == 3
    assert val_keys("e", dataclasses.replace(QUIET, val_count=3, seed=1)) != counted


def test_resampling_to_16k(ljspeech_mini: Path, tmp_path: Path) -> None:
    prepare_corpus(ljspeech_mini, tmp_path, dataclasses.replace(QUIET, sample_rate=16000))
    assert CorpusIndex.read(tmp_path).sample_rate == 16000
    for key, members in read_corpus(tmp_path).items():
        pcm, rate = decode(members)
        source = soundfile.info(str(ljspeech_mini / "wavs" / f"{key}.wav"))
        assert rate == 16000 and meta(members)["sample_rate"] == 16000
        assert abs(len(pcm) / 16000 - source.duration) <= 1 / 16000
        assert meta(members)["duration"] == len(pcm) / 16000


def test_wav_and_flac_hold_the_same_pcm16_samples(ljspeech_mini: Path, tmp_path: Path) -> None:
    untouched = dataclasses.replace(QUIET, normalize="none")
    prepare_corpus(ljspeech_mini, tmp_path / "flac", dataclasses.replace(untouched, audio_format="flac"))
    prepare_corpus(ljspeech_mini, tmp_path / "wav", untouched)
    flac, wav = read_corpus(tmp_path / "flac"), read_corpus(tmp_path / "wav")
    assert CorpusIndex.read(tmp_path / "wav").audio_format == "wav"
    assert CorpusIndex.read(tmp_path / "flac").audio_format == "flac"
    assert all("wav" in m and "flac" not in m for m in wav.values())
    assert all("flac" in m and "wav" not in m for m in flac.values())
    for key in flac:
        source, _ = soundfile.read(str(ljspeech_mini / "wavs" / f"{key}.wav"), dtype="int16")
        np.testing.assert_array_equal(decode(flac[key])[0], source)
        np.testing.assert_array_equal(decode(wav[key])[0], source)


def test_shard_limits(ljspeech_mini: Path, tmp_path: Path) -> None:
    limit = 1_000_000
    index = prepare_corpus(ljspeech_mini, tmp_path, dataclasses.replace(QUIET, shard_max_bytes=limit))
    shards = index.splits["train"].shards
    assert len(shards) >= 3
    for shard in shards:
        with tarfile.open(tmp_path / shard.path) as tar:
            assert len({m.name.partition(".")[0] for m in tar.getmembers()}) == shard.samples
        assert (tmp_path / shard.path).stat().st_size <= limit or shard.samples == 1
    assert [s.path for s in shards] == [f"train-{n:06d}.tar" for n in range(len(shards))]

    index = prepare_corpus(ljspeech_mini, tmp_path, dataclasses.replace(QUIET, shard_max_samples=5))
    assert [s.samples for s in index.splits["train"].shards] == [5, 5, 5, 5]
    # The earlier run's extra shards are gone: the folder holds exactly what the index lists.
    listed = {s.path for split in index.splits.values() for s in split.shards}
    assert {p.name for p in tmp_path.glob("*.tar")} == listed


def test_output_does_not_depend_on_workers(ljspeech_mini: Path, tmp_path: Path) -> None:
    options = dataclasses.replace(QUIET, shard_max_samples=7)
    one = prepare_corpus(ljspeech_mini, tmp_path / "one", options)
    two = prepare_corpus(ljspeech_mini, tmp_path / "two", dataclasses.replace(options, workers=2))
    assert shard_bytes(tmp_path / "one") == shard_bytes(tmp_path / "two")
    assert len(shard_bytes(tmp_path / "one")) == 4  # 20 training clips in 3 shards, 4 held out
    assert one.to_json() | {"options": {}} == two.to_json() | {"options": {}}


# ---------------------------------------------------------------------------------------------
# A folder of generated files, with broken ones


def tone(seconds: float, rate: int, frequency: float = 220.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def make_folder(root: Path) -> Path:
    """Good files (nested, one stereo) and bad ones (corrupt, empty, silent, NaN)."""
    for sub in ("spk1/deep", "spk2"):
        (root / sub).mkdir(parents=True)
    soundfile.write(root / "spk1" / "a.wav", tone(0.5, 16000), 16000, subtype="PCM_16")
    soundfile.write(root / "spk1" / "deep" / "b.flac", tone(0.7, 16000, 330), 16000)
    stereo = np.stack([tone(0.6, 16000, 200, 0.4), tone(0.6, 16000, 300, 0.2)], axis=1)
    soundfile.write(root / "spk2" / "stereo.wav", stereo, 16000, subtype="PCM_16")
    soundfile.write(root / "top.wav", tone(0.3, 16000, 440), 16000, subtype="PCM_16")
    (root / "corrupt.wav").write_bytes(b"RIFF\x00\x01garbage" * 50)
    (root / "empty.wav").write_bytes(b"")
    soundfile.write(root / "silent.wav", np.zeros(8000, np.float32), 16000, subtype="PCM_16")
    nan = tone(0.5, 16000)
    nan[100] = np.nan
    soundfile.write(root / "nan.wav", nan, 16000, subtype="FLOAT")
    (root / "notes.txt").write_text("not audio")
    return root


def test_folder_with_bad_files_reports_them_and_succeeds(tmp_path: Path, capsys) -> None:
    src, out = make_folder(tmp_path / "src"), tmp_path / "out"
    code = cli_main(["prepare", str(src), str(out), "--normalize", "none", "--val-count", "1", "--no-progress"])
    assert code == 0
    index = CorpusIndex.read(out)
    reasons = {Path(f["path"]).name: f["reason"] for f in index.failed}
    assert set(reasons) == {"corrupt.wav", "empty.wav", "silent.wav", "nan.wav"}
    assert "0 bytes" in reasons["empty.wav"] and "unreadable" in reasons["corrupt.wav"]
    assert "silent" in reasons["silent.wav"] and "NaN" in reasons["nan.wav"]
    printed = capsys.readouterr().out
    assert "failed: 4 inputs" in printed and "corrupt.wav" in printed

    samples = read_corpus(out)
    assert {k: meta(m)["speaker"] for k, m in samples.items()} == {
        "spk1__a": "spk1", "spk1__deep__b": "spk1", "spk2__stereo": "spk2", "top": None}
    assert index.sample_rate == 16000 and sum(s.samples for s in index.splits.values()) == 4
    mixed, _ = decode(samples["spk2__stereo"])
    source, _ = soundfile.read(src / "spk2" / "stereo.wav", dtype="float32")
    assert meta(samples["spk2__stereo"])["channels"] == 1
    np.testing.assert_allclose(mixed / 32768, source.mean(axis=1), atol=1.5 / 32768)


def test_no_mono_refuses_multichannel_files(tmp_path: Path) -> None:
    src = make_folder(tmp_path / "src")
    index = prepare_corpus(src, tmp_path / "out", dataclasses.replace(QUIET, mono=False))
    assert "stereo.wav" in {Path(f["path"]).name for f in index.failed}
    assert "spk2__stereo" not in read_corpus(tmp_path / "out")


def test_only_bad_files_fails_without_an_index(tmp_path: Path, capsys) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "corrupt.wav").write_bytes(b"\x00garbage" * 100)
    (src / "empty.flac").write_bytes(b"")
    assert cli_main(["prepare", str(src), str(tmp_path / "out"), "--no-progress"]) == 1
    assert not (tmp_path / "out" / "index.json").exists()
    assert "nothing was written" in capsys.readouterr().out


def test_mixed_sample_rates_need_a_target_rate(tmp_path: Path, capsys) -> None:
    src = tmp_path / "src"
    src.mkdir()
    soundfile.write(src / "a.wav", tone(0.5, 16000), 16000)
    soundfile.write(src / "b.wav", tone(0.5, 22050), 22050)
    assert cli_main(["prepare", str(src), str(tmp_path / "out"), "--no-progress"]) == 2
    assert "different sample rates" in capsys.readouterr().err
    index = prepare_corpus(src, tmp_path / "out", dataclasses.replace(QUIET, sample_rate=22050, val_count=0))
    lengths = {k: len(decode(m)[0]) for k, m in read_corpus(tmp_path / "out").items()}
    assert index.splits.keys() == {"train"} and lengths == {"a": 11025, "b": 11025}


def test_loudness_normalization(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    soundfile.write(src / "quiet.wav", tone(1.0, 16000, amplitude=0.01), 16000)
    soundfile.write(src / "short.wav", tone(0.2, 16000), 16000)
    options = dataclasses.replace(QUIET, normalize="loudness", loudness_lufs=-20.0, val_count=0)
    index = prepare_corpus(src, tmp_path / "out", options)
    assert [Path(f["path"]).name for f in index.failed] == ["short.wav"]
    pcm, rate = decode(read_corpus(tmp_path / "out")["quiet"])
    measured = torchaudio.functional.loudness(torch.from_numpy(pcm / 32768).float()[None], rate)
    assert abs(float(measured) + 20.0) < 0.1


def test_jsonl_manifest_with_text_and_speaker(tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    soundfile.write(tmp_path / "clips" / "one.wav", tone(0.5, 16000), 16000)
    soundfile.write(tmp_path / "clips" / "two.flac", tone(0.4, 16000, 300), 16000)
    manifest = tmp_path / "corpus.jsonl"
    manifest.write_text("\n".join([
        json.dumps({"audio": "clips/one.wav", "text": "héllo wörld", "speaker": "ann"}),
        json.dumps({"audio": str(tmp_path / "clips" / "two.flac"), "speaker": "bob"}),
        "[1, 2]",
    ]) + "\n", encoding="utf-8")
    index = prepare_corpus(manifest, tmp_path / "out", dataclasses.replace(QUIET, val_count=0))
    assert index.failed == [{"path": f"{manifest}:3", "reason": 'expected an object with an "audio" path'}]
    samples = read_corpus(tmp_path / "out")
    one, two = samples["clips__one"], samples["clips__two"]
    assert meta(one)["text"] == "héllo wörld" and one["txt"].decode("utf-8") == "héllo wörld"
    assert meta(one)["speaker"] == "ann" and meta(two)["speaker"] == "bob"
    assert "text" not in meta(two) and "txt" not in two
    assert len(decode(two)[0]) == 6400


def test_folder_symlinks_are_followed_once_and_non_utf8_names_kept(tmp_path: Path) -> None:
    # Issue 24: linked speaker folders were skipped (10 of 11 clips lost) and a Latin-1 name dropped.
    elsewhere = tmp_path / "elsewhere" / "spk1"
    elsewhere.mkdir(parents=True)
    for i in range(3):
        soundfile.write(elsewhere / f"c{i}.wav", tone(0.5, 16000), 16000, subtype="PCM_16")
    (elsewhere / "loop").symlink_to(elsewhere)  # a link back to itself: scanned once, and said
    src = tmp_path / "src"
    src.mkdir()
    (src / "spk1").symlink_to(elsewhere)
    soundfile.write(src / "own.wav", tone(0.5, 16000), 16000, subtype="PCM_16")
    latin1 = bytes(src) + b"/caf\xe9.wav"
    soundfile.write(latin1, tone(0.5, 16000), 16000, subtype="PCM_16")
    index = prepare_corpus(src, tmp_path / "out", QUIET)
    samples = read_corpus(tmp_path / "out")
    assert sorted(samples) == ["caf_xe9", "own", "spk1__c0", "spk1__c1", "spk1__c2"]
    assert meta(samples["caf_xe9"])["source"] == "caf\\xe9.wav"
    assert bytes.fromhex(meta(samples["caf_xe9"])["source_bytes"]) == b"caf\xe9.wav"
    assert meta(samples["spk1__c0"])["speaker"] == "spk1"
    (failure,) = index.failed
    assert failure["path"] == str(src / "spk1" / "loop") and "already scanned as" in failure["reason"]
