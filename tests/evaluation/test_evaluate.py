"""``distgan evaluate``: one CSV row per held-out clip, a summary table, and the same answer on
one process, on two ranks, from shards or from a folder of wav files."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile

from distgan import cli
from tests.evaluation.helpers import run_without
from tests.inference.helpers import SAMPLE_RATE, synthetic_corpus, val_clips
from tests.train.helpers import run_distgan

# The fast metrics; the pYIN-based f0 columns are covered by test_metrics.py.
METRICS = ["mel_l1", "mrstft", "pesq", "stoi"]


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def summary_means(stdout: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\w+)\s+(-?\d+\.\d+)\s+\d+\.\d+\s+\d+$",
                                                               stdout, re.M)}


@pytest.fixture(scope="module")
def single_process(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``distgan evaluate`` on the synthetic corpus's val split, one process: (CSV, stdout).

    A subprocess with one thread, like each rank under torchrun: with a different thread count the
    generator's output changes in the last bits, and PESQ on the near-silent output of a barely
    trained model can move by 0.1 from that alone.
    """
    out = tmp_path_factory.mktemp("evaluate") / "scores.csv"
    done = run_distgan(["evaluate", "--checkpoint", str(tiny_run), str(synthetic_corpus()),
                        "--metrics", *METRICS, "--out", str(out)])
    return out, done.stdout


def test_every_val_clip_gets_a_row_and_the_summary_agrees(single_process: tuple[Path, str]) -> None:
    out, stdout = single_process
    columns, rows = read_csv(out)
    assert columns == ["key", "seconds", *METRICS]
    clips = val_clips()
    assert [row["key"] for row in rows] == sorted(clips) and len(rows) == 4
    for row in rows:
        assert float(row["seconds"]) == pytest.approx(len(clips[row["key"]]) // 256 * 256 / SAMPLE_RATE, abs=1e-3)
        values = {name: float(row[name]) for name in METRICS}
        assert all(math.isfinite(v) for v in values.values()), row
        assert values["mel_l1"] > 0 and values["mrstft"] > 0
        assert 1.0 <= values["pesq"] <= 4.65 and -1.0 <= values["stoi"] <= 1.0
    means = summary_means(stdout)
    assert set(means) == set(METRICS)
    for name in METRICS:
        assert means[name] == pytest.approx(np.mean([float(row[name]) for row in rows]), abs=1e-4)
    assert re.search(r"^4 utterances, \d+\.\d s of audio; generator real-time factor \d+\.\d+", stdout, re.M)
    assert f"per-utterance scores: {out}" in stdout


@pytest.mark.slow
def test_two_ranks_score_each_clip_once_and_agree_with_one(tiny_run: Path, single_process: tuple[Path, str],
                                                           tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    done = run_distgan(["evaluate", "--checkpoint", str(tiny_run), str(synthetic_corpus()),
                        "--metrics", *METRICS, "--out", str(out)], launcher="torchrun")
    assert done.stdout.count("4 utterances") == 1  # one summary, from rank 0
    columns, rows = read_csv(out)
    _, expected = read_csv(single_process[0])
    assert columns == ["key", "seconds", *METRICS]
    assert [row["key"] for row in rows] == [row["key"] for row in expected]  # each clip once, sorted
    for row, reference in zip(rows, expected, strict=True):
        for name in ["seconds", *METRICS]:
            assert float(row[name]) == pytest.approx(float(reference[name]), rel=1e-5), (row["key"], name)


def test_a_folder_of_wav_files_scores_like_the_shards(tiny_run: Path, single_process: tuple[Path, str],
                                                      tmp_path: Path) -> None:
    # The shards hold PCM-16 wav, so writing the decoded clips as PCM-16 again is lossless.
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    for key, wave in list(val_clips().items())[:3]:
        soundfile.write(wavs / f"{key}.wav", wave.numpy(), SAMPLE_RATE, subtype="PCM_16")
    out = tmp_path / "scores.csv"
    done = run_distgan(["evaluate", "--checkpoint", str(tiny_run), str(wavs), "--metrics", *METRICS,
                        "--max-clips", "2", "--out", str(out)])
    assert "2 utterances" in done.stdout
    _, rows = read_csv(out)
    _, expected = read_csv(single_process[0])
    assert [row["key"] for row in rows] == [row["key"] for row in expected[:2]]
    for row, reference in zip(rows, expected[:2], strict=True):
        for name in METRICS:
            assert float(row[name]) == pytest.approx(float(reference[name]), rel=1e-5), (row["key"], name)


def test_a_wav_at_another_sample_rate_is_skipped_naming_it_and_the_rest_scored(tiny_run: Path, tmp_path: Path,
                                                                              capsys) -> None:
    # Issue 24: one 16 kHz file among 22.05 kHz files used to abort the whole evaluation (exit 2).
    key, wave = next(iter(val_clips().items()))
    soundfile.write(tmp_path / f"{key}.wav", wave.numpy(), SAMPLE_RATE, subtype="PCM_16")
    soundfile.write(tmp_path / "z-phone.wav", wave.numpy()[:16000], 16000, subtype="PCM_16")
    assert cli.main(["evaluate", "--checkpoint", str(tiny_run), str(tmp_path), "--metrics", "mel_l1"]) == 0
    message = capsys.readouterr().out
    assert f"{tmp_path / 'z-phone.wav'} skipped: sample rate 16000 Hz" in message and "22050 Hz" in message
    assert "1 utterances" in message
    (tmp_path / f"{key}.wav").unlink()  # nothing left at the model's rate: an error naming the folder
    assert cli.main(["evaluate", "--checkpoint", str(tiny_run), str(tmp_path), "--metrics", "mel_l1"]) == 2
    assert f"{tmp_path}: no readable audio file at 22050 Hz" in capsys.readouterr().out


def test_a_silent_reference_is_skipped_and_leaves_the_mean_alone(tiny_run: Path, tmp_path: Path, capsys) -> None:
    for key, wave in list(val_clips().items())[:2]:
        soundfile.write(tmp_path / f"{key}.wav", wave.numpy(), SAMPLE_RATE, subtype="PCM_16")
    args = ["evaluate", "--checkpoint", str(tiny_run), str(tmp_path), "--metrics", "mel_l1", "mrstft"]
    assert cli.main(args) == 0
    before = summary_means(capsys.readouterr().out)
    soundfile.write(tmp_path / "silence.wav", np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE, subtype="PCM_16")
    assert cli.main(args) == 0
    message = capsys.readouterr().out
    assert "silence skipped: silent reference (peak 0 < 0.0001)" in message and "2 utterances" in message
    assert summary_means(message) == pytest.approx(before)


def test_corrupt_empty_and_nan_files_are_skipped_and_named(tiny_run: Path, tmp_path: Path, capsys) -> None:
    for key, wave in list(val_clips().items())[:2]:
        soundfile.write(tmp_path / f"{key}.wav", wave.numpy(), SAMPLE_RATE, subtype="PCM_16")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF" + bytes(200))
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, np.float32), SAMPLE_RATE)
    soundfile.write(tmp_path / "nan.wav", np.full(9000, np.nan, np.float32), SAMPLE_RATE, subtype="FLOAT")
    assert cli.main(["evaluate", "--checkpoint", str(tiny_run), str(tmp_path), "--metrics", "mel_l1",
                     "--out", str(tmp_path / "scores.csv")]) == 0
    message = capsys.readouterr().out
    assert f"{tmp_path / 'corrupt.wav'} skipped: not readable audio" in message
    assert f"{tmp_path / 'empty.wav'} skipped: empty" in message
    assert f"{tmp_path / 'nan.wav'} skipped: NaN or Inf in the samples" in message
    assert "2 utterances" in message
    _, rows = read_csv(tmp_path / "scores.csv")
    assert len(rows) == 2


def test_shards_at_another_sample_rate_are_an_error(tiny_run: Path, tmp_path: Path, capsys) -> None:
    index = (synthetic_corpus() / "index.json").read_text()
    (tmp_path / "index.json").write_text(index.replace('"sample_rate": 22050', '"sample_rate": 16000'))
    for tar in synthetic_corpus().glob("*.tar"):
        (tmp_path / tar.name).symlink_to(tar)
    assert cli.main(["evaluate", "--checkpoint", str(tiny_run), str(tmp_path)]) == 2
    message = capsys.readouterr().out
    assert "16000 Hz" in message and "22050 Hz" in message


def test_a_missing_metric_package_empties_its_column_and_says_why(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    done = run_without("pesq", ["evaluate", "--checkpoint", str(tiny_run), str(synthetic_corpus()),
                                "--metrics", "pesq", "stoi", "--max-clips", "2", "--out", str(out)])
    assert done.returncode == 0, done.stderr
    columns, rows = read_csv(out)
    assert columns == ["key", "seconds", "pesq", "stoi"] and len(rows) == 2
    assert [row["pesq"] for row in rows] == ["", ""]
    assert all(0 < float(row["stoi"]) <= 1 for row in rows)
    (pesq_line,) = [line for line in done.stdout.splitlines() if line.startswith("pesq")]
    assert "n/a" in pesq_line and "unavailable: pesq not installed" in pesq_line
    assert "stoi" in summary_means(done.stdout)
