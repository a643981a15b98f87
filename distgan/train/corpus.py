"""Where the trainer's audio comes from: the configured shards or the built-in synthetic corpus."""

from __future__ import annotations

import torch

from distgan import distributed
from distgan.config import Config
from distgan.data.shards import ShardSet, pipe_commands, resolve_shards
from distgan.data.stream import TrainLoader, TrainStream, iter_utterances
from distgan.data.synthetic import ensure_synthetic_corpus
from distgan.distributed import ProcessInfo
from distgan.train.preflight import check_rate
from distgan.train.signals import ignore_stop_signals


def corpus_spec(cfg: Config, info: ProcessInfo | None = None) -> str:
    """``data.shards``, or the synthetic corpus (written once per node, by local rank 0)."""
    if cfg.data.shards:
        return cfg.data.shards
    synth = cfg.data.synthetic
    kwargs = dict(sample_rate=cfg.audio.sample_rate, speakers=synth.speakers,
                  utterances=synth.utterances, seed=synth.seed)
    if info is not None and info.local_rank != 0:
        distributed.barrier()  # wait for local rank 0 to write it
        return str(ensure_synthetic_corpus(**kwargs))
    path = str(ensure_synthetic_corpus(**kwargs))
    if info is not None:
        distributed.barrier()
    return path


_ANNOUNCED: set[str] = set()


def announce_commands(shards: ShardSet, info: ProcessInfo) -> ShardSet:
    """Print, once per command, each shell command reading these shards will run (rank 0)."""
    new = [command for command in pipe_commands(shards) if command not in _ANNOUNCED]
    _ANNOUNCED.update(new)
    if new and info.is_main:
        print(f"[distgan] reading the shards runs {len(new)} shell command(s):\n  " + "\n  ".join(new), flush=True)
    return shards


def train_loader(cfg: Config, info: ProcessInfo, spec: str, start_epoch: int, skip_batches: int
                 ) -> TrainLoader:
    shards = resolve_shards(spec, "train", cfg.data.allow_index_pipes)
    announce_commands(check_rate(shards, cfg, "the training shards"), info)
    stream = TrainStream(
        shards, sample_rate=cfg.audio.sample_rate, segment_samples=cfg.data.segment_samples,
        batch_size=cfg.data.batch_size, rank=info.rank, world_size=info.world_size,
        seed=cfg.train.seed, shuffle_buffer=cfg.data.shuffle_buffer, short_clips=cfg.data.short_clips,
        start_epoch=start_epoch, skip_batches=skip_batches,
    )
    # Workers leave stop signals to this process, which checkpoints before it stops (signals.py).
    return TrainLoader(stream, num_workers=cfg.data.num_workers, pin_memory=info.device.type == "cuda",
                       prefetch_factor=cfg.data.prefetch_factor, worker_init_fn=ignore_stop_signals)


def validation_clips(cfg: Config, info: ProcessInfo, spec: str) -> list[dict]:
    """The first ``log.val_clips`` validation utterances, identical on every rank.

    Every rank holds them because under ZeRO-3 the generator's forward is a collective: all ranks
    must run it on the same number of clips.
    """
    if cfg.log.val_clips == 0:
        return []
    try:
        shards = resolve_shards(cfg.data.val_shards or spec, "val", cfg.data.allow_index_pipes)
    except (FileNotFoundError, KeyError, ValueError) as err:
        if info.is_main:
            print(f"[distgan] no validation clips ({err}); validation audio is off")
        return []
    announce_commands(check_rate(shards, cfg, "the validation shards"), info)
    if not cfg.data.val_shards and info.is_main:
        train_urls = {shard.url for shard in resolve_shards(spec, "train", cfg.data.allow_index_pipes).shards}
        if {shard.url for shard in shards.shards} <= train_urls:
            print(f"[distgan] {spec} has no held-out split: validation clips come from the training "
                  "shards (set data.val_shards, or prepare with --val-count)")
    hop = cfg.audio.hop_length
    clips = []
    for clip in iter_utterances(shards, sample_rate=cfg.audio.sample_rate, rank=info.rank,
                                world_size=info.world_size, mode="all", max_clips=cfg.log.val_clips):
        audio: torch.Tensor = clip["audio"]
        audio = audio[: len(audio) // hop * hop]
        if len(audio):
            clips.append({"key": clip["key"], "audio": audio})
    return clips
