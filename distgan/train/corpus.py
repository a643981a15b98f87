"""Where the trainer's audio comes from: the configured shards or the built-in synthetic corpus.

Shards without an index (any folder of WebDataset tars) are counted here, once per start: rank 0
reads the tar headers and every other rank takes its counts, so the epoch plan, which must be the
same on every rank, cannot differ if a shard changes under a running job. The validation clips
are picked and read the same way (rank 0 reads a few clips; every rank decodes them). With
``data.val_fraction`` the training shards are narrowed to the samples not held out
(``data/holdout.py``) and the validation clips come from those held out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import torch

from distgan import distributed
from distgan.config import Config, ConfigError
from distgan.data.holdout import Holdout
from distgan.data.shards import ShardSet, ShardSpec, pipe_commands, resolve_shards
from distgan.data.stream import TrainLoader, TrainStream
from distgan.data.stream.probe import check_sample_rate
from distgan.data.stream.utterances import decode_utterances, sorted_samples
from distgan.data.synthetic import ensure_synthetic_corpus
from distgan.distributed import ProcessInfo
from distgan.train.preflight import check_rate
from distgan.train.signals import ignore_stop_signals

T = TypeVar("T")


def corpus_spec(cfg: Config, info: ProcessInfo | None = None) -> ShardSpec:
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


def on_main(info: ProcessInfo, work: Callable[[], T]) -> T:
    """``work()`` run by rank 0 alone, its result (or its error) given to every rank.

    A failure on rank 0 must reach the others too, or they would wait in the broadcast until
    the collective timeout: every rank raises it, rank 0 the original exception.
    """
    outcome: tuple[bool, object] = (True, None)
    error: Exception | None = None
    if info.is_main:
        try:
            outcome = (True, work())
        except Exception as err:  # re-raised below, on every rank
            error, outcome = err, (False, f"{type(err).__name__}: {err}")
    ok, value = distributed.broadcast_object(outcome)
    if error is not None:
        raise error
    if not ok:
        raise ConfigError(f"rank 0: {value}")
    return value  # type: ignore[return-value]


def training_shards(cfg: Config, info: ProcessInfo, spec: ShardSpec) -> ShardSet:
    """The training shards, every count known and identical on every rank (see module doc)."""
    holdout = Holdout(cfg.data.val_fraction, held_out=False) if cfg.data.val_fraction > 0 else None
    shards = resolve_shards(spec, "train", cfg.data.allow_index_pipes).select(holdout)
    announce_commands(check_rate(shards, cfg, "the training shards"), info)
    return on_main(info, lambda: _count(shards, cfg))


def _count(shards: ShardSet, cfg: Config) -> ShardSet:
    """``shards.counted()`` (keys dropped) with a line saying what it cost; data errors as ConfigError."""
    try:
        if shards.sample_rate is None:
            check_sample_rate(shards, cfg.audio.sample_rate)
        if shards.samples is not None:
            return shards.without_keys()
        start = time.perf_counter()
        counted = shards.counted().without_keys()
    except ValueError as err:
        raise ConfigError(f"data.shards: {err}") from err
    print(f"[distgan] counted {counted.samples} training samples in {len(shards)} shards without "
          f"an index ({time.perf_counter() - start:.1f} s, tar headers only); `distgan index` writes "
          "one so that later starts skip this", flush=True)
    return counted


def train_loader(cfg: Config, info: ProcessInfo, spec: ShardSpec, start_epoch: int, skip_batches: int
                 ) -> TrainLoader:
    shards = training_shards(cfg, info, spec)
    stream = TrainStream(
        shards, sample_rate=cfg.audio.sample_rate, segment_samples=cfg.data.segment_samples,
        batch_size=cfg.data.batch_size, rank=info.rank, world_size=info.world_size,
        seed=cfg.train.seed, shuffle_buffer=cfg.data.shuffle_buffer, short_clips=cfg.data.short_clips,
        start_epoch=start_epoch, skip_batches=skip_batches,
    )
    # Workers leave stop signals to this process, which checkpoints before it stops (signals.py).
    pinned = cfg.perf.pin_memory and info.device.type == "cuda"
    return TrainLoader(stream, num_workers=cfg.data.num_workers, pin_memory=pinned,
                       prefetch_factor=cfg.data.prefetch_factor, worker_init_fn=ignore_stop_signals)


def validation_shards(cfg: Config, spec: ShardSpec) -> ShardSet:
    """``data.val_shards``; else the samples ``data.val_fraction`` holds out; else the val split."""
    data = cfg.data
    if data.val_shards:
        return resolve_shards(data.val_shards, "val", data.allow_index_pipes)
    if data.val_fraction > 0:
        train = resolve_shards(spec, "train", data.allow_index_pipes)
        return train.select(Holdout(data.val_fraction, held_out=True))
    return resolve_shards(spec, "val", data.allow_index_pipes)


def validation_clips(cfg: Config, info: ProcessInfo, spec: ShardSpec) -> list[dict]:
    """The first ``log.val_clips`` validation utterances (in key order), identical on every rank.

    Every rank holds them because under ZeRO-3 the generator's forward is a collective: all ranks
    must run it on the same number of clips. Rank 0 reads them (headers first, then only the
    chosen clips) and gives every rank their bytes.
    """
    if cfg.log.val_clips == 0:
        return []
    try:
        shards = validation_shards(cfg, spec)
    except (FileNotFoundError, KeyError, ValueError) as err:
        if info.is_main:
            print(f"[distgan] no validation clips ({err}); validation audio is off (data.val_fraction=0.01 "
                  "holds out 1% of the training samples for it)")
        return []
    announce_commands(check_rate(shards, cfg, "the validation shards"), info)
    if not cfg.data.val_shards and not cfg.data.val_fraction and info.is_main:
        train_urls = {shard.url for shard in resolve_shards(spec, "train", cfg.data.allow_index_pipes).shards}
        if {shard.url for shard in shards.shards} <= train_urls:
            print(f"[distgan] {spec} has no held-out split: validation clips come from the training "
                  "shards (set data.val_fraction or data.val_shards, or prepare with --val-count)")
    samples = on_main(info, lambda: sorted_samples(shards, cfg.log.val_clips))
    hop = cfg.audio.hop_length
    clips = []
    for clip in decode_utterances(samples, sample_rate=cfg.audio.sample_rate):
        audio: torch.Tensor = clip["audio"]
        audio = audio[: len(audio) // hop * hop]
        if len(audio):
            clips.append({"key": clip["key"], "audio": audio})
    return clips
