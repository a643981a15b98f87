"""A briefly trained tiny model and the synthetic corpus it trained on, shared by the inference
and evaluation tests; both live in the session's DISTGAN_CACHE and are made once per session.
And a checkpoint written without training, for models no run needs to have trained."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from torch.optim import Optimizer

from distgan.checkpoint.files import digest
from distgan.checkpoint.format import (
    CHECKPOINTS,
    CONFIG,
    DDP_STATE,
    ENGINES,
    MARKER,
    TRAINER_STATE,
    step_folder_name,
)
from distgan.config import Config, SyntheticConfig, dump_config
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


def write_checkpoint(run_dir: Path, cfg: Config, models: dict[str, nn.Module], optimizers: dict[str, Optimizer],
                     step: int, epoch: int) -> Path:
    """A complete checkpoint as one process writes it (``distgan.checkpoint.format``), made without
    training: ``models`` and ``optimizers`` keyed by engine (``generator``, ``discriminator``)."""
    folder = run_dir / CHECKPOINTS / step_folder_name(step)
    for engine in ENGINES:
        (folder / engine).mkdir(parents=True)
        torch.save({"model": models[engine].state_dict(), "optimizer": optimizers[engine].state_dict(),
                    "scaler": None}, folder / engine / DDP_STATE)
    torch.save({"state": {"step": step, "epoch": epoch}, "world_size": 1, "deepspeed_stage": None},
               folder / TRAINER_STATE)
    (folder / CONFIG).write_text(dump_config(cfg))
    files = {p.relative_to(folder).as_posix(): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}
    meta = {"step": step, "world_size": 1, "deepspeed_stage": None, "files": files}
    (folder / MARKER).write_text(json.dumps(meta) + "\n")
    return folder
