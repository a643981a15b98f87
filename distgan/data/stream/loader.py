"""``TrainStream`` and ``TrainLoader``: every rank and DataLoader worker reads its own exact share.

``TrainStream`` is an ``IterableDataset`` that yields whole batches::

    {"audio": FloatTensor [b, segment_samples] (b <= batch_size), "epoch": int,
     "index": int (batch number within the epoch on this rank),
     "skips": LongTensor [len(SKIP_REASONS) + 1] (drops since this worker's last batch; last
              slot: refilled segments)}

How the epoch is split (``plan.py``) guarantees that every rank yields the same number of
batches, ``batches_per_epoch``, whatever the bad input (``worker.py`` refills), so collectives
never wait on a rank that ran dry, and that a resume from (epoch, batch index) replays exactly.

Epochs with persistent workers: each ``iter()`` of the stream (in a worker: each ``iter(loader)``)
starts that copy's next epoch, beginning at ``start_epoch``. ``skip_batches`` (the batches of
``start_epoch`` a checkpoint already consumed) applies to the first epoch only.

``TrainLoader`` wraps the DataLoader and hands out one epoch at a time in ``index`` order. It
must not be passed through ``accelerator.prepare``: the stream already splits by rank, and
Accelerate's own sharding would split it a second time.
"""

from __future__ import annotations

import atexit
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from distgan.data.format import SILENCE_PEAK
from distgan.data.shards import ShardSet
from distgan.data.stream.plan import EpochPlan
from distgan.data.stream.skips import NoUsableAudio
from distgan.data.stream.worker import SegmentSettings, worker_batches


class TrainStream(IterableDataset):
    """This rank's batches of random segments, split across DataLoader workers (see module doc).

    ``with_keys=True`` adds ``"keys": list[str]`` to each batch (sample keys; a refilled slot is
    ``"refill:KEY"``), for tests and debugging.
    """

    def __init__(
        self,
        shards: ShardSet,
        *,
        sample_rate: int,
        segment_samples: int,
        batch_size: int,
        rank: int,
        world_size: int,
        seed: int,
        shuffle_buffer: int = 128,
        short_clips: str = "skip",
        start_epoch: int = 0,
        skip_batches: int = 0,
        silence_peak: float = SILENCE_PEAK,
        with_keys: bool = False,
    ) -> None:
        super().__init__()
        if short_clips not in ("skip", "pad"):
            raise ValueError(f"short_clips must be 'skip' or 'pad', not {short_clips!r}")
        if segment_samples < 1:
            raise ValueError(f"segment_samples must be positive, got {segment_samples}")
        if shards.sample_rate is not None and shards.sample_rate != sample_rate:
            raise ValueError(
                f"the shards hold {shards.sample_rate} Hz audio ({shards.index_path}) but audio.sample_rate "
                f"is {sample_rate}; prepare the corpus at {sample_rate} Hz or change the config"
            )
        self.shards = shards.counted().without_keys()  # workers need the counts only
        self.plan = EpochPlan([s.samples or 0 for s in self.shards.shards], world_size=world_size,
                              batch_size=batch_size, seed=seed)
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        if not 0 <= skip_batches <= self.plan.batches_per_epoch:
            raise ValueError(f"skip_batches={skip_batches} outside [0, {self.plan.batches_per_epoch}]")
        if skip_batches == self.plan.batches_per_epoch:  # a checkpoint at the very end of an epoch
            start_epoch, skip_batches = start_epoch + 1, 0
        self.rank = rank
        self.start_epoch = start_epoch
        self.skip_batches = skip_batches
        self.settings = SegmentSettings(
            sample_rate=sample_rate, segment_samples=segment_samples, pad_short=short_clips == "pad",
            silence_peak=silence_peak, shuffle_buffer=shuffle_buffer, seed=seed, with_keys=with_keys,
        )
        # Epochs started by this copy of the stream (each worker process holds its own copy).
        self._epochs_started = 0

    @property
    def batches_per_epoch(self) -> int:
        """Batches every rank yields per epoch (equal on all ranks by construction)."""
        return self.plan.batches_per_epoch

    def __iter__(self) -> Iterator[dict[str, Any]]:
        # Not a generator function: the epoch counter moves when the worker asks, even if it
        # then abandons the iterator.
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        epoch = self.start_epoch + self._epochs_started
        skip = self.skip_batches if self._epochs_started == 0 else 0
        self._epochs_started += 1
        plan = self.plan.worker_plan(epoch, self.rank, worker, num_workers)
        return worker_batches(plan, self.shards.shards, self.settings, skip_batches=skip)


class TrainLoader:
    """Persistent DataLoader workers over a ``TrainStream``; one ``next_epoch()`` per epoch.

    ``epoch`` is the epoch the latest ``next_epoch()`` iterates (before the first call: the one
    it will iterate). Batches come out in ``index`` order: after a resume at batch ``k`` the
    first worker asked need not own batch ``k``, so up to ``num_workers`` batches wait in a
    small reorder buffer.

    ``close()`` stops the workers. Workers started with a ``worker_init_fn`` that ignores
    SIGTERM (the trainer's, so that a signal to the whole process group leaves the stop to the
    main process) would otherwise outlive Python's exit handler, which stops them with SIGTERM
    and waits: every loader still open at exit is closed first.
    """

    def __init__(self, stream: TrainStream, *, num_workers: int, pin_memory: bool,
                 prefetch_factor: int = 2, worker_init_fn: Callable[[int], None] | None = None) -> None:
        self.stream = stream
        self.num_workers = num_workers
        self.epoch = stream.start_epoch
        self._started = False
        self.loader = DataLoader(
            stream,
            batch_size=None,
            num_workers=num_workers,
            pin_memory=pin_memory,
            prefetch_factor=prefetch_factor if num_workers > 0 else None,
            persistent_workers=num_workers > 0,
            worker_init_fn=worker_init_fn,
        )
        if num_workers > 0:
            _OPEN.add(self)

    def close(self) -> None:
        """Shut the worker processes down (through the DataLoader's own shutdown path)."""
        iterator = getattr(self.loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
            self.loader._iterator = None
        _OPEN.discard(self)

    @property
    def batches_per_epoch(self) -> int:
        return self.stream.batches_per_epoch

    def next_epoch(self) -> Iterator[dict[str, Any]]:
        """The next epoch's batches (the first call resumes at ``skip_batches``).

        Starts the epoch when called, not when first iterated: the workers' epoch counters
        advance on every ``iter(loader)``, so ``self.epoch`` must advance with them.
        """
        if self._started:
            self.epoch += 1
        first_index = self.stream.skip_batches if not self._started else 0
        self._started = True
        return self._ordered(iter(self.loader), self.epoch, first_index)

    def _ordered(self, batches: Iterator[dict[str, Any]], epoch: int,
                 first_index: int) -> Iterator[dict[str, Any]]:
        expected = first_index
        waiting: dict[int, dict[str, Any]] = {}
        for batch in _one_line_errors(batches):
            if batch["epoch"] != epoch:
                raise RuntimeError(
                    f"a worker produced epoch {batch['epoch']} while the loader expects epoch {epoch}; "
                    "the stream must be iterated only through one TrainLoader with persistent workers"
                )
            waiting[batch["index"]] = batch
            while expected in waiting:
                yield waiting.pop(expected)
                expected += 1
        if waiting or expected != self.batches_per_epoch:
            raise RuntimeError(
                f"epoch {epoch} ended after batch {expected} of {self.batches_per_epoch} "
                f"(stranded batches: {sorted(waiting)})"
            )


def _one_line_errors(batches: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """``batches``, with a worker's ``NoUsableAudio`` re-raised as its own one line: the
    DataLoader re-raises a worker's exception with the worker's whole traceback as its message."""
    try:
        yield from batches
    except NoUsableAudio as err:
        last = str(err).strip().splitlines()[-1]
        raise NoUsableAudio(last.split(": ", 1)[1] if "NoUsableAudio: " in last else last) from None


# Loaders whose workers are still running. Registered after multiprocessing's own exit handler,
# so (exit handlers run last-registered first) this closes them before it would stop them.
_OPEN: weakref.WeakSet[TrainLoader] = weakref.WeakSet()


@atexit.register
def _close_open_loaders() -> None:
    for loader in list(_OPEN):
        loader.close()
