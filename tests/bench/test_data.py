"""``distgan bench data``: both loaders run and report positive throughput (no timing asserts)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from distgan import cli
from distgan.bench.data import bench_data
from distgan.data.synthetic import synthesize_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_corpus(tmp_path_factory.mktemp("corpus"), sample_rate=8000, speakers=2, utterances=12,
                             val_count=2)


def test_bench_measures_both_loaders(corpus: Path) -> None:
    rows = bench_data(str(corpus), max_workers=1, batch_size=4, segment_samples=1024, seconds=0.3, warmup=0.1)
    assert [r.workers for r in rows] == [1]
    row = rows[0]
    assert row.baseline_segments_per_s > 0 and row.distgan_segments_per_s > 0
    assert math.isclose(row.distgan_audio_seconds_per_s, row.distgan_segments_per_s * 1024 / 8000)
    assert math.isfinite(row.ratio) and row.ratio > 0


def test_bench_command_prints_the_table(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "data", str(corpus), "--workers", "1", "--batch-size", "4",
                     "--segment-samples", "1024", "--seconds", "0.2", "--warmup", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "baseline seg/s" in out and "CPU cores" in out
    assert out.strip().splitlines()[-1].split("|")[0].strip() == "1"


def test_pipe_shards_are_refused_in_one_line(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tar = next(corpus.glob("train-*.tar"))
    assert cli.main(["bench", "data", f"pipe:cat {tar}", "--seconds", "0.1", "--warmup", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("distgan bench data: pipe:cat ") and "pipe: shards are refused" in err
    assert len(err.strip().splitlines()) == 1
