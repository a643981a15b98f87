"""Checks of a run that need no process group, made before one starts: a mistake costs seconds
and leaves nothing behind, instead of failing after a rendezvous with a traceback.

- the run directory: a folder (or nothing yet) that can be written, and, when it holds checkpoints, trained with a
  config whose model and audio settings match this one (else loading fails with a page of
  "size mismatch" lines);
- ``train.init_from``: the weights it names exist and were trained with this config's mel and
  layout settings (``init_from.py``);
- ``perf.compile`` is not asked of a DeepSpeed launch (its engines wrap the models themselves);
- the data: the shards ``data.shards`` and ``data.val_shards`` name exist, and their index's
  sample rate is ``audio.sample_rate``; the training shards hold enough samples for the ranks
  and batches, and a usable clip where a look at their first clips can tell (``probe.py``:
  an empty ``.tar``, every clip shorter than a segment, silent, or at another rate).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from distgan.config import Config, ConfigError, config_from_yaml_text, to_dict
from distgan.data.format import SILENCE_PEAK
from distgan.data.holdout import Holdout
from distgan.data.shards import ShardSet, resolve_shards

# Everything that imports torch (checkpoints, the data stream, the engines, init_from) is imported
# where a check needs it: a mistake in the config or its paths is then reported in a fraction of a
# second, without the second or two that loading torch takes.

# Settings a checkpoint's weights are bound to.
SHAPE_SECTIONS = ("model", "audio")


def check_run(cfg: Config, run_dir: Path) -> None:
    """Raise ``ConfigError`` for any problem with the run directory or the data."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir} is a file, not a folder")
    check_writable(run_dir)
    check_checkpoint_config(cfg, run_dir)
    if cfg.train.init_from:
        from distgan.train.init_from import check_init_from

        check_init_from(cfg, run_dir)
    if cfg.perf.compile and _deepspeed_launch(cfg):
        raise ConfigError("perf.compile: compiling under DeepSpeed is not supported; use DDP or set it false")
    if cfg.data.shards:
        check_training_data(cfg, check_rate(_resolve(cfg, cfg.data.shards, "train", "data.shards"), cfg,
                                            "the training shards"))
    if cfg.data.val_shards:
        check_rate(_resolve(cfg, cfg.data.val_shards, "val", "data.val_shards"), cfg, "the validation shards")


def _deepspeed_launch(cfg: Config) -> bool:
    from distgan.train.engine import deepspeed_launch

    return deepspeed_launch(cfg)


def check_writable(run_dir: Path) -> None:
    """The run directory (or the folder it will be made in) can be written: a read-only one would
    otherwise fail at its lock file, with a traceback."""
    existing = next(folder for folder in (run_dir, *run_dir.absolute().parents) if folder.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "--run-dir" if existing == run_dir else f"--run-dir {run_dir} would be made in"
        raise ConfigError(f"{where} {existing}, which cannot be written (a read-only file system, or no write "
                          "permission): copy the run directory somewhere writable and pass that --run-dir")


def _resolve(cfg: Config, spec: str, split: str, key: str) -> ShardSet:
    try:
        return resolve_shards(spec, split, cfg.data.allow_index_pipes)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(f"{key}: {err}") from err


def check_training_data(cfg: Config, shards: ShardSet) -> None:
    """Enough samples for every rank's batches (when counted), and a usable clip among the first
    ones (local shards: a ``pipe:`` command runs only once the trainer has announced it)."""
    from distgan.data.stream.plan import EpochPlan
    from distgan.data.stream.probe import check_usable
    from distgan.data.stream.skips import NoUsableAudio

    holdout = Holdout(cfg.data.val_fraction, held_out=False) if cfg.data.val_fraction > 0 else None
    shards = shards.select(holdout)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    try:
        if shards.samples == 0 or not any(shard.is_pipe for shard in shards.shards):  # 0: nothing is read
            check_usable(shards, sample_rate=cfg.audio.sample_rate, segment_samples=cfg.data.segment_samples,
                         pad_short=cfg.data.short_clips == "pad", silence_peak=SILENCE_PEAK)
        if shards.samples is not None:
            EpochPlan([s.samples or 0 for s in shards.shards], world_size=world_size,
                      batch_size=cfg.data.batch_size, seed=cfg.train.seed)
    except NoUsableAudio as err:
        raise ConfigError(str(err)) from err
    except ValueError as err:
        raise ConfigError(f"data.shards: {err}") from err


def check_rate(shards: ShardSet, cfg: Config, what: str) -> ShardSet:
    if shards.sample_rate is not None and shards.sample_rate != cfg.audio.sample_rate:
        raise ConfigError(
            f"{what} {shards.index_path or ''} hold {shards.sample_rate} Hz audio but audio.sample_rate is "
            f"{cfg.audio.sample_rate}; re-run 'distgan prepare --sample-rate {cfg.audio.sample_rate}' "
            "or change the config"
        )
    return shards


def _flat(section: Any, prefix: str) -> dict[str, Any]:
    if isinstance(section, dict):
        return {k: v for key, value in section.items() for k, v in _flat(value, f"{prefix}.{key}").items()}
    return {prefix: section}


def check_checkpoint_config(cfg: Config, run_dir: Path) -> None:
    """The newest checkpoint's model and audio settings equal ``cfg``'s, or ``ConfigError`` naming
    every key that differs."""
    if not run_dir.is_dir():  # a new run directory holds no checkpoint
        return
    from distgan.checkpoint.format import CONFIG, complete_checkpoints

    checkpoint = next(complete_checkpoints(run_dir, report=lambda _: None), None)
    if checkpoint is None or not (checkpoint.path / CONFIG).is_file():
        return
    try:
        saved = to_dict(config_from_yaml_text(checkpoint.config_text()))
    except ConfigError:
        return  # an unreadable saved config: the checkpoint's own check reports it
    now = to_dict(cfg)
    differences = []
    for section in SHAPE_SECTIONS:
        before, after = _flat(saved[section], section), _flat(now[section], section)
        differences += [f"{key}: {before[key]!r} in the checkpoint, {after[key]!r} now"
                        for key in sorted(before) if before[key] != after.get(key)]
    if differences:
        raise ConfigError(f"{checkpoint.path} was trained with other model or audio settings; "
                          + "; ".join(differences)
                          + ". Use a new --run-dir for a new model (or keep the checkpoint's settings)")
