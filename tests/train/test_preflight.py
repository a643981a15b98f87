"""Mistakes in what ``distgan train`` is given end in one line naming the problem, exit status 2,
before any process group starts, and leave nothing behind in a new run directory."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from distgan import cli
from distgan.data.index import CorpusIndex
from tests.data.shard_helpers import sample, tone, write_corpus
from tests.train.helpers import REPO_ROOT, TINY, run_distgan, train_args


def refused(args: list[str], *expected: str) -> str:
    start = time.monotonic()
    done = run_distgan(args, check=False, timeout=120)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr
    for text in expected:
        assert text in done.stderr, done.stderr
    assert time.monotonic() - start < 60
    return done.stderr


@pytest.fixture(scope="module")
def corpus_8k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus8k")
    write_corpus(folder, {"train": [[sample(f"s{i}", tone(9000, seed=i)) for i in range(4)]]})
    return folder


@pytest.mark.slow
def test_config_and_run_directory_mistakes(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("train:\n  max_steps: [1,\n")
    refused(["train", "--config", str(bad_yaml), "--run-dir", str(tmp_path / "a")], f"{bad_yaml}: not valid YAML")
    refused(train_args(tmp_path / "b", "train.max_steps=[1"), "override 'train.max_steps=[1'", "not valid YAML")
    refused(train_args(tmp_path / "c", "optim.generator.eps=.nan"), "optim.generator.eps: expected a finite number")
    refused(train_args(tmp_path / "d", "loss.mel_weight=.nan"), "loss.mel_weight: expected a finite number")
    refused(train_args(tmp_path / "e", "data.prefetch_factor=0"), "data.prefetch_factor must be at least 1")
    refused(train_args(tmp_path / "f", "audio.n_mels=0"), "audio.n_mels must be at least 1")
    refused(["train", "--run-dir", str(tmp_path / "new")], "holds no config.yaml: a new run directory needs --config")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    refused(train_args(a_file), f"--run-dir {a_file} is a file, not a folder")
    for name in "abcdef":
        assert not (tmp_path / name).exists()  # nothing written for a refused run
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_data_mistakes(tmp_path: Path, corpus_8k: Path) -> None:
    missing = tmp_path / "no-such-shards"
    refused(train_args(tmp_path / "a", f"data.shards={missing}"), "data.shards:", str(missing))
    refused(train_args(tmp_path / "b", f"data.shards={corpus_8k}"),
            "hold 8000 Hz audio but audio.sample_rate is 22050")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow
def test_a_pipe_command_in_a_downloaded_index_never_runs_unless_allowed(tmp_path: Path, corpus_8k: Path) -> None:
    marker = tmp_path / "command-ran"
    index = CorpusIndex.read(corpus_8k)
    for entry in index.splits["train"].shards:
        entry.path = f"pipe:touch {marker}; cat {corpus_8k / entry.path}"
    index.write(tmp_path)
    stderr = refused(train_args(tmp_path / "run", f"data.shards={tmp_path / 'index.json'}",
                                "audio.sample_rate=8000", "audio.fmax=4000"),
                     "a shell command from a file", "data.allow_index_pipes=true")
    assert "touch" in stderr and not marker.exists()
    # Allowed: the command runs, and is printed once before it does.
    done = run_distgan(train_args(tmp_path / "allowed", f"data.shards={tmp_path / 'index.json'}",
                                  "audio.sample_rate=8000", "audio.fmax=4000", "data.allow_index_pipes=true",
                                  "train.max_steps=1",
                                  "data.segment_samples=2048", "log.val_clips=0"), timeout=300)
    assert f"reading the shards runs 1 shell command(s):\n  touch {marker}; cat" in done.stdout
    assert marker.exists()


@pytest.mark.slow
def test_resuming_with_another_model_names_the_keys_that_differ(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_distgan(train_args(run, "train.max_steps=1"))
    refused(["train", "--config", str(TINY), "--run-dir", str(run), "model.generator.upsample_initial_channel=32",
             "audio.n_mels=64", "train.max_steps=2"],
            "was trained with other model or audio settings",
            "model.generator.upsample_initial_channel: 64 in the checkpoint, 32 now",
            "audio.n_mels: 80 in the checkpoint, 64 now")
    shutil.rmtree(run)


def test_compiling_under_deepspeed_is_refused_before_any_process_group(tmp_path: Path) -> None:
    from distgan.config import ConfigError, load_config
    from distgan.train.preflight import check_run

    zero2 = REPO_ROOT / "launch" / "deepspeed" / "zero2.json"
    check_run(load_config(TINY, ["perf.compile=true", "perf.compile_backend=aot_eager"]), tmp_path / "run")
    with pytest.raises(ConfigError, match="perf.compile: compiling under DeepSpeed is not supported"):
        check_run(load_config(TINY, ["perf.compile=true", f"dist.deepspeed_config={zero2}"]), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` made read-only: as root (whom permissions do not stop) a read-only tmpfs mount
    holding a copy of it, else its permission bits."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    mount = folder.parent / "mount"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        copy = Path(shutil.copytree(folder, mount / folder.name))
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield copy
    finally:
        subprocess.run(["umount", str(mount)])


def test_a_read_only_run_directory_is_one_line(tmp_path: Path, capsys) -> None:
    # Issue 24: `OSError: [Errno 30] Read-only file system: '.../LOCK'` as a traceback.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(TINY, run_dir / "config.yaml")
    with read_only(run_dir) as locked:
        assert cli.main(["train", "--run-dir", str(locked), "train.max_steps=1"]) == 2
        err = capsys.readouterr().err
        assert err == (f"distgan train: config error: --run-dir {locked}, which cannot be written (a read-only file "
                       "system, or no write permission): copy the run directory somewhere writable and pass that "
                       "--run-dir\n")
        assert sorted(p.name for p in locked.iterdir()) == ["config.yaml"]
