"""Resolving ``data.shards`` specs to shards, counting samples, and reading tars (incl. pipe:)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distgan.data.index import CorpusIndex
from distgan.data.shards import (
    ShardReadError,
    UntrustedCommand,
    count_samples,
    iter_shard,
    pipe_commands,
    resolve_shards,
)
from distgan.data.stream import TrainStream
from tests.data.shard_helpers import good_shards, write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    return write_corpus(folder, {"train": good_shards(3, 4, samples=1200), "val": good_shards(1, 2, prefix="v")})


def test_folder_and_index_path_give_the_split_with_recorded_counts(corpus: Path) -> None:
    for spec in (str(corpus), str(corpus / "index.json")):
        train = resolve_shards(spec)
        assert [Path(s.url).name for s in train.shards] == [f"train-00000{i}.tar" for i in range(3)]
        assert train.samples == 12 and train.sample_rate == 8000
        assert train.index_path == corpus / "index.json"
    val = resolve_shards(str(corpus), split="val")
    assert [Path(s.url).name for s in val.shards] == ["val-000000.tar"] and val.samples == 2


def test_unknown_split_is_an_error_listing_the_splits(corpus: Path) -> None:
    with pytest.raises(ValueError, match="no split 'test'.*train, val"):
        resolve_shards(str(corpus), split="test")


def test_brace_pattern_expands_and_borrows_counts_from_the_index_beside_it(corpus: Path) -> None:
    shards = resolve_shards(str(corpus / "train-{000000..000001}.tar"))
    assert [Path(s.url).name for s in shards.shards] == ["train-000000.tar", "train-000001.tar"]
    assert [s.samples for s in shards.shards] == [4, 4]


def test_folder_without_index_counts_from_headers_and_keeps_splits_apart(corpus: Path, tmp_path: Path) -> None:
    for tar in corpus.glob("*.tar"):
        shutil.copy(tar, tmp_path / tar.name)
    shards = resolve_shards(str(tmp_path))
    assert [Path(s.url).name for s in shards.shards] == [f"train-00000{i}.tar" for i in range(3)]
    assert shards.samples is None and shards.sample_rate is None
    assert shards.counted().samples == 12
    assert count_samples(shards.shards[0]) == 4
    assert [Path(s.url).name for s in resolve_shards(str(tmp_path), split="val").shards] == ["val-000000.tar"]
    with pytest.raises(FileNotFoundError, match="no test-NNNNNN.tar shards"):
        resolve_shards(str(tmp_path), split="test")


def test_folder_of_foreign_tars_is_taken_whole(corpus: Path, tmp_path: Path) -> None:
    for i, tar in enumerate(sorted(corpus.glob("*.tar"))):
        shutil.copy(tar, tmp_path / f"part{3 - i}.tar")
    shards = resolve_shards(str(tmp_path))
    assert [Path(s.url).name for s in shards.shards] == ["part0.tar", "part1.tar", "part2.tar", "part3.tar"]
    assert shards.counted().samples == 14


def test_missing_paths_are_errors_naming_them(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        resolve_shards(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="train-000003.tar does not exist \\(and 4 more\\)"):
        resolve_shards(str(corpus / "train-{000000..000007}.tar"))
    with pytest.raises(FileNotFoundError, match="no index.json and no .tar"):
        resolve_shards(str(tmp_path))
    copy = tmp_path / "copy"
    shutil.copytree(corpus, copy)
    (copy / "train-000001.tar").unlink()
    with pytest.raises(FileNotFoundError, match="train-000001.tar"):
        resolve_shards(str(copy))


def test_pipe_urls_expand_stream_and_need_an_index_for_training(corpus: Path) -> None:
    spec = f"pipe:cat {corpus}/train-{{000000..000002}}.tar"
    shards = resolve_shards(spec)
    assert [s.url for s in shards.shards] == [f"pipe:cat {corpus}/train-00000{i}.tar" for i in range(3)]
    assert [s.key for s in iter_shard(shards.shards[1].url, 1, 3)] == ["s1_01", "s1_02"]
    with pytest.raises(ValueError, match="index.json"):
        TrainStream(shards, sample_rate=8000, segment_samples=512, batch_size=2, rank=0, world_size=1, seed=0)
    with pytest.raises(ShardReadError):
        list(iter_shard(f"pipe:cat {corpus}/absent.tar"))


def test_an_index_of_pipe_urls_trains(corpus: Path, tmp_path: Path) -> None:
    index = CorpusIndex.read(corpus)
    for entry in index.splits["train"].shards:
        entry.path = f"pipe:cat {corpus / entry.path}"
    index.write(tmp_path)
    # A command from a file runs only when the user says the index is trusted.
    with pytest.raises(UntrustedCommand, match="a shell command from a file.*data.allow_index_pipes=true"):
        resolve_shards(str(tmp_path / "index.json"))
    shards = resolve_shards(str(tmp_path / "index.json"), allow_index_pipes=True)
    assert pipe_commands(shards) == [entry.path.removeprefix("pipe:") for entry in index.splits["train"].shards]
    assert all(s.is_pipe for s in shards.shards) and shards.samples == 12
    stream = TrainStream(shards, sample_rate=8000, segment_samples=512, batch_size=3, rank=1, world_size=2,
                         seed=0, with_keys=True)
    batches = list(stream)
    assert [len(b["keys"]) for b in batches] == [3, 3] and sum(b["skips"].sum() for b in batches) == 0


def test_iter_shard_reads_a_range_and_only_its_members(corpus: Path) -> None:
    url = str(corpus / "train-000002.tar")
    samples = list(iter_shard(url, 1, 3))
    assert [(s.key, s.index) for s in samples] == [("s2_01", 1), ("s2_02", 2)]
    assert set(samples[0].members) == {"flac", "json"}
    assert [s.key for s in iter_shard(url)] == [f"s2_0{i}" for i in range(4)]


def test_sample_rate_mismatch_with_the_config_is_an_error(corpus: Path) -> None:
    with pytest.raises(ValueError, match="8000 Hz.*22050"):
        TrainStream(resolve_shards(str(corpus)), sample_rate=22050, segment_samples=512, batch_size=2,
                    rank=0, world_size=1, seed=0)
