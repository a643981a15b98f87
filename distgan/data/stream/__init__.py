"""Streaming shards to training: each rank and DataLoader worker reads its own exact share.

- ``plan.py``: how an epoch's samples are split between ranks, workers and batches (pure arithmetic);
- ``worker.py``: one worker's pipeline for one epoch (read, shuffle, decode a crop, batch, refill);
- ``decode.py``: a sample's audio bytes to a training segment or a whole clip;
- ``skips.py``: why a sample was dropped, and the counters the trainer logs;
- ``loader.py``: ``TrainStream`` (the dataset) and ``TrainLoader`` (persistent workers, one epoch at a time);
- ``utterances.py``: whole utterances in a fixed order, for validation and evaluation.
"""

from distgan.data.stream.loader import TrainLoader, TrainStream
from distgan.data.stream.skips import COUNTER_NAMES, SKIP_REASONS, SkipCounter, skips_to_dict, sum_skips
from distgan.data.stream.utterances import iter_utterances

__all__ = [
    "COUNTER_NAMES", "SKIP_REASONS", "SkipCounter", "TrainLoader", "TrainStream", "iter_utterances",
    "skips_to_dict", "sum_skips",
]
