"""A briefly trained tiny model and the synthetic corpus it trained on, shared by the inference
and evaluation tests; both live in the session's DISTGAN_CACHE and are made once per session."""

from __future__ import annotations

from pathlib import Path

import torch

from distgan.config import SyntheticConfig
from distgan.data.shards import resolve_shards
from distgan.data.stream.utterances import iter_utterances
from distgan.data.synthetic import ensure_synthetic_corpus
from tests.train.helpers import checkpoints, run_distgan, train_args

SAMPLE_RATE = 22050  # configs/tiny.yaml
HOP_LENGTH = 256
N_MELS = 80
TRAINED_STEPS = 2


def synthetic_corpus() -> Path:
    """The shards of the built-in corpus that configs/tiny.yaml trains on (it has a val split)."""
    synth = SyntheticConfig()
    return ensure_synthetic_corpus(sample_rate=SAMPLE_RATE, speakers=synth.speakers,
                                   utterances=synth.utterances, seed=synth.seed)


def trained_tiny_run(cache: Path) -> Path:
    """configs/tiny.yaml trained for TRAINED_STEPS steps: a real run directory with one checkpoint."""
    run = cache / "tiny-run"
    if not checkpoints(run):
        run_distgan(train_args(run, f"train.max_steps={TRAINED_STEPS}"))
    return run


def val_clips() -> dict[str, torch.Tensor]:
    """The synthetic corpus's validation clips, key -> waveform [T], in key order."""
    shards = resolve_shards(str(synthetic_corpus()), "val")
    return {clip["key"]: clip["audio"]
            for clip in iter_utterances(shards, sample_rate=SAMPLE_RATE, rank=0, world_size=1, mode="all")}
