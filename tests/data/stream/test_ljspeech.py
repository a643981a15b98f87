"""Real speech: ljspeech-mini, prepared by ``distgan prepare``, streams at 22050 Hz."""

from __future__ import annotations

from pathlib import Path

import soundfile
import torch

from distgan.data.prepare import prepare_corpus
from distgan.data.prepare.options import PrepareOptions
from distgan.data.shards import resolve_shards
from distgan.data.stream import TrainLoader, TrainStream, iter_utterances
from distgan.data.stream.skips import sum_skips


def test_prepared_ljspeech_mini_streams_at_22050(ljspeech_mini: Path, tmp_path: Path) -> None:
    prepare_corpus(ljspeech_mini, tmp_path, PrepareOptions(shard_max_samples=6, val_count=4, progress=False))
    train = resolve_shards(str(tmp_path))
    assert train.sample_rate == 22050 and train.samples == 20 and len(train) == 4

    stream = TrainStream(train, sample_rate=22050, segment_samples=8192, batch_size=4, rank=0, world_size=1,
                         seed=0, with_keys=True)
    batches = list(TrainLoader(stream, num_workers=2, pin_memory=False).next_epoch())
    assert len(batches) == stream.batches_per_epoch == 5
    keys = [k for b in batches for k in b["keys"]]
    assert len(set(keys)) == len(keys) == 20
    assert set(keys) <= {p.stem for p in (ljspeech_mini / "wavs").glob("*.wav")}
    assert all(b["audio"].shape == (4, 8192) for b in batches)
    assert sum(sum_skips(batches).values()) == 0
    assert all(0.01 < b["audio"].abs().max() <= 1.0 for b in batches)

    clips = list(iter_utterances(resolve_shards(str(tmp_path), split="val"), sample_rate=22050, rank=0,
                                 world_size=1))
    assert len(clips) == 4 and [c["key"] for c in clips] == sorted(c["key"] for c in clips)
    for clip in clips:
        source = soundfile.info(ljspeech_mini / "wavs" / f"{clip['key']}.wav")
        assert clip["audio"].shape == (source.frames,) and clip["audio"].dtype == torch.float32
