"""A corpus without a single usable clip is one line naming the cause and the fix, exit status 2,
before any process group or run directory exists (issue 24, and issue 23's shards without audio).

Each case writes real shards the way a user's corpus goes wrong and runs ``distgan train`` through
its command line in this process: the checks run before the trainer exists, so no process group
can be left behind, and a subprocess per case would only add seconds of imports.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from distgan import cli
from distgan.data.shards import resolve_shards
from distgan.data.stream import TrainLoader, TrainStream
from distgan.data.stream.probe import PROBE_CLIPS
from distgan.data.stream.skips import NoUsableAudio
from tests.data.shard_helpers import encode, sample, tone, write_corpus
from tests.train.helpers import FAST, TINY

RATE = 22050  # configs/tiny.yaml's
SEGMENT = 4096  # tests.train.helpers.FAST's


def clips(count: int, length: int, **options) -> list[dict[str, bytes]]:
    return [sample(f"c{i:02d}", tone(length, seed=i, sample_rate=RATE), sample_rate=RATE, **options)
            for i in range(count)]


def at_44k(members: dict[str, bytes]) -> dict[str, bytes]:
    """The wav re-encoded at 44.1 kHz while its json (and the index) still say 22.05 kHz."""
    return {**members, "wav": encode(tone(9000, seed=1, sample_rate=44100), 44100, "wav")}


def zero_counts(folder: Path) -> Path:
    index = json.loads((folder / "index.json").read_text())
    for split in index["splits"].values():
        split["samples"] = 0
        for shard in split["shards"]:
            shard["samples"] = 0
    (folder / "index.json").write_text(json.dumps(index))
    return folder


def empty_tar(folder: Path) -> Path:
    folder.mkdir()
    tarfile.open(folder / "train-000000.tar", "w").close()
    return folder


CASES = {
    "all-shorter-than-a-segment": (
        lambda d: write_corpus(d, {"train": [clips(4, 2000), clips(4, 3000)]}, sample_rate=RATE),
        "every clip is shorter than data.segment_samples=4096 (the longest has 3000 samples): set "
        "data.segment_samples to at most 3000, or data.short_clips=pad"),
    "segment-longer-than-every-clip": (
        lambda d: write_corpus(d, {"train": [clips(4, 9000)]}, sample_rate=RATE),
        "every clip is shorter than data.segment_samples=20480 (the longest has 9000 samples)"),
    "all-silent": (
        lambda d: write_corpus(d, {"train": [[sample(f"c{i}", np.zeros(9000, np.float32), sample_rate=RATE)
                                              for i in range(4)]]}, sample_rate=RATE),
        "every clip is silent (peak below 0.0001)"),
    "wav-headers-at-44k-index-at-22k": (
        lambda d: write_corpus(d, {"train": [[at_44k(m) for m in clips(4, 9000, fmt="wav")]]}, sample_rate=RATE),
        "is 44100 Hz audio, and the first 4 readable clips are all 44100 Hz, but audio.sample_rate is 22050: "),
    "index-counts-all-zero": (
        lambda d: zero_counts(write_corpus(d, {"train": [clips(4, 9000)]}, sample_rate=RATE)),
        "records 0 samples) hold no samples"),
    "an-empty-tar": (empty_tar, "the 1 shard(s) hold no samples (empty or unreadable .tar files)"),
    "shards-without-audio": (
        lambda d: write_corpus(d, {"train": [[sample(f"c{i}", None, sample_rate=RATE) for i in range(4)]]},
                               sample_rate=RATE, index=False),
        "no sample holds an audio member (KEY.flac, KEY.wav, ...)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_usable_clip_is_one_line_before_anything_is_made(case: str, tmp_path: Path, capsys) -> None:
    make, expected = CASES[case]
    corpus, run_dir = make(tmp_path / "corpus"), tmp_path / "run"
    segment = ["data.segment_samples=20480"] if case == "segment-longer-than-every-clip" else []
    status = cli.main(["train", "--config", str(TINY), "--run-dir", str(run_dir), *FAST, *segment,
                       f"data.shards={corpus}", "train.max_steps=2"])
    err = capsys.readouterr().err
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1 and expected in err, err
    assert err.startswith("distgan train: config error: data.shards: ")
    assert not run_dir.exists()


def test_a_corpus_too_large_to_probe_fails_in_the_stream_with_the_same_one_line(tmp_path: Path) -> None:
    # More silent clips than the probe looks at: the stream itself finds out, in a worker process.
    silent = [sample(f"c{i:03d}", np.zeros(5000, np.float32), sample_rate=RATE) for i in range(PROBE_CLIPS + 8)]
    shards = resolve_shards(str(write_corpus(tmp_path, {"train": [silent]}, sample_rate=RATE)))
    stream = TrainStream(shards, sample_rate=RATE, segment_samples=SEGMENT, batch_size=4, rank=0, world_size=1,
                         seed=1)
    loader = TrainLoader(stream, num_workers=1, pin_memory=False)
    try:
        with pytest.raises(NoUsableAudio) as caught:
            next(loader.next_epoch())
    finally:
        loader.close()
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith("no usable audio in any shard: every clip was dropped ({'silent': ")
