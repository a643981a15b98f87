"""``train.init_from``: a new run that starts from published or earlier weights (fine-tuning).

Unlike a resume, which continues a run (its step, data position, schedule and optimizer state),
an initialised run starts at step 0 with a fresh data order and learning-rate schedule; only
weights come over: the generator always, the discriminator with ``train.init_discriminator``,
and the Adam moments with ``train.init_optimizers``. A run directory that already holds a
checkpoint resumes from it and ignores ``init_from`` (a requeued fine-tuning job continues itself).

Sources (``resolve_init_source``): a distgan run directory (its newest complete checkpoint), a
checkpoint folder or an exported ``.safetensors`` generator; or the original code's files
(``distgan.checkpoint.releases``): HiFi-GAN's ``g_``/``do_`` pairs and BigVGAN's, or its Hub files,
each with its ``config.json``. The source's settings are checked against the config before any
process group starts (``check_init_from``, from ``preflight``); every difference is one line.

Weights are loaded into the plain modules before the engines wrap them, so DDP broadcasts nothing
new and DeepSpeed partitions the loaded weights (every ZeRO stage, ZeRO-3 included). Optimizer
moments load into the engines' own optimizers afterwards (``init_optimizers.py``): DDP and one
process only, as ZeRO keeps them flat and partitioned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distgan.checkpoint.format import (
    CONFIG,
    DDP_STATE,
    ENGINES,
    Checkpoint,
    CheckpointProblem,
    checkpoint_dir,
    complete_checkpoints,
    content_problem,
    open_checkpoint,
)
from distgan.checkpoint.releases import (
    Release,
    ReleaseError,
    find_release,
    read_discriminator,
    read_generator,
    second_set_kind,
)
from distgan.checkpoint.weights import (
    EXPORT_CONFIG_KEY,
    EXPORT_SUFFIX,
    checkpoint_config,
    ddp_engine_state,
    engine_state_dict,
)
from distgan.config import AudioConfig, Config, ConfigError, FamilyConfig, family_section, from_dict
from distgan.distributed import ProcessInfo
from distgan.models.reference_weights import load_reference_state_dict, map_reference_state_dict
from distgan.train.engine import ModelEngine, deepspeed_launch
from distgan.train.init_optimizers import load_initial_optimizers, reference_optimizer_state

# The audio settings the weights depend on (the loss's band, fmax_loss, may change when fine-tuning).
MEL_FIELDS = ("sample_rate", "n_fft", "hop_length", "win_length", "n_mels", "fmin", "fmax")
# Generator settings that change no weight.
FREE_GENERATOR_FIELDS = ("activation_checkpointing",)


@dataclass
class InitSource:
    """What ``train.init_from`` names: a distgan checkpoint, a distgan export or a release."""

    path: Path
    checkpoint: Checkpoint | None = None
    export: Path | None = None
    release: Release | None = None

    def describe(self) -> str:
        if self.release is not None:
            return self.release.describe()
        return f"distgan {'export' if self.export else 'checkpoint'} {self.export or self.checkpoint.path}"


@dataclass
class InitialState:
    """What was loaded, and the optimizer states still to load once the engines exist."""

    source: InitSource
    parts: list[str] = field(default_factory=list)  # the models loaded
    optimizer_states: dict[str, tuple[str, Any]] = field(default_factory=dict)  # engine -> (kind, state)

    def finish(self, engines: tuple[ModelEngine, ...], info: ProcessInfo) -> None:
        """Load the optimizer states into the engines and say what the run starts from."""
        load_initial_optimizers(self.optimizer_states, engines, info, str(self.source.path))
        if info.is_main:
            fresh = "" if "discriminator" in self.parts else "; the discriminator starts fresh"
            moments = " (and Adam moments)" if self.optimizer_states else ""
            print(f"[distgan] initialised the {' and '.join(self.parts)}{moments} from {self.source.describe()}"
                  f"{fresh} (step 0)", flush=True)


def _error(path: Path | str, message: str) -> ConfigError:
    return ConfigError(f"train.init_from: {path}: {message}")


def resolve_init_source(path: str | Path) -> InitSource:
    """What ``path`` is; ``ConfigError`` naming it when it is none of the sources."""
    path = Path(path)
    if not path.exists():
        raise _error(path, "no such file or directory")
    try:
        if path.suffix == EXPORT_SUFFIX:
            return InitSource(path, export=path)
        if checkpoint_dir(path).is_dir():
            checkpoint = next(complete_checkpoints(path, report=lambda _: None), None)
            if checkpoint is None:
                raise _error(path, "a run directory without a complete checkpoint")
            return InitSource(path, checkpoint=checkpoint)
        if path.is_dir() and (path / ENGINES[0]).is_dir() and (path / CONFIG).is_file():
            return InitSource(path, checkpoint=open_checkpoint(path))
        release = find_release(path)
    except (CheckpointProblem, ReleaseError) as err:
        raise _error(path, str(err)) from err
    if release is None:
        raise _error(path, "neither a distgan run directory, checkpoint folder or .safetensors export, nor a "
                     "HiFi-GAN/BigVGAN checkpoint (g_XXXXXXXX or bigvgan_generator.pt with its config.json)")
    return InitSource(path, release=release)


def _export_config(path: Path) -> tuple[AudioConfig, FamilyConfig]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
    if EXPORT_CONFIG_KEY not in metadata:
        raise _error(path, f"not a distgan export (no {EXPORT_CONFIG_KEY} metadata)")
    saved = json.loads(metadata[EXPORT_CONFIG_KEY])
    return from_dict(AudioConfig, saved["audio"], "audio."), family_section(saved["generator"], "generator")


def _field_differences(section: str, saved: Any, now: Any, skip: tuple[str, ...] = (),
                       only: tuple[str, ...] | None = None) -> list[str]:
    theirs = {f.name for f in fields(saved)}  # another family's section: its family field differs
    names = [f.name for f in fields(now) if f.name in theirs and f.name not in skip and (only is None or f.name in only)]
    return [f"{section}.{name}={getattr(saved, name)!r} there but {getattr(now, name)!r} here"
            for name in names if getattr(saved, name) != getattr(now, name)]


def source_differences(source: InitSource, cfg: Config) -> list[str]:
    """Each setting in which the source's weights and ``cfg`` disagree (the discriminator's only
    with ``train.init_discriminator``)."""
    with_d = cfg.train.init_discriminator
    if source.release is not None:
        second = second_set_kind(source.release) if with_d else None
        return source.release.format.differences(source.release.config, cfg, second)
    if source.export is not None:
        audio, generator = _export_config(source.export)
        discriminator = None
    else:
        saved = checkpoint_config(source.checkpoint)
        audio, generator, discriminator = saved.audio, saved.model.generator, saved.model.discriminator
    found = (_field_differences("audio", audio, cfg.audio, only=MEL_FIELDS)
             + _field_differences("model.generator", generator, cfg.model.generator, skip=FREE_GENERATOR_FIELDS))
    if with_d and discriminator is not None:
        found += _field_differences("model.discriminator", discriminator, cfg.model.discriminator)
    return found


def _check_parts(source: InitSource, cfg: Config) -> None:
    """The source holds what the config asks to take from it, and the launch can take it."""
    train, where = cfg.train, source.path
    if train.init_optimizers and deepspeed_launch(cfg):
        raise _error(where, "train.init_optimizers works under DDP and in one process; DeepSpeed ZeRO keeps the "
                     "Adam moments flat and partitioned, so start with fresh ones (train.init_optimizers=false)")
    if source.export is not None and (train.init_discriminator or train.init_optimizers):
        raise _error(where, "an export holds the generator only; set train.init_discriminator=false and "
                     "train.init_optimizers=false, or name the run directory it was exported from")
    if source.release is not None and (train.init_discriminator or train.init_optimizers) \
            and source.release.discriminator is None:
        raise _error(where, f"{source.release.generator.name} has no discriminator file beside it (do_XXXXXXXX "
                     "of the same step, or bigvgan_discriminator_optimizer.pt): set train.init_discriminator=false "
                     "and train.init_optimizers=false to fine-tune it with a fresh discriminator")
    if train.init_optimizers and source.checkpoint is not None \
            and not (source.checkpoint.path / ENGINES[0] / DDP_STATE).is_file():
        raise _error(where, "its optimizer state is DeepSpeed's, partitioned per rank: it can resume that run "
                     "but not initialise another (set train.init_optimizers=false)")


def check_init_from(cfg: Config, run_dir: Path) -> None:
    """Before any process group: the source exists, holds what is asked of it and matches ``cfg``.
    Nothing is checked when ``run_dir`` resumes (``init_from`` is then ignored)."""
    if not cfg.train.init_from or next(complete_checkpoints(run_dir, report=lambda _: None), None):
        return
    source = resolve_init_source(cfg.train.init_from)
    _check_parts(source, cfg)
    try:
        differences = source_differences(source, cfg)
    except ReleaseError as err:
        raise _error(source.path, str(err)) from err
    if differences:
        raise _error(source.path, "its weights were trained with other settings than this config: "
                     + "; ".join(differences) + ". Change the config to match, or start from other weights")


def _load_checkpoint(source: InitSource, cfg: Config, models: dict[str, nn.Module], state: InitialState) -> None:
    problem = content_problem(source.checkpoint)
    if problem is not None:
        raise _error(source.path, str(problem))
    for name, model in models.items():
        model.load_state_dict(engine_state_dict(source.checkpoint, name))
        if cfg.train.init_optimizers:  # a DDP checkpoint (_check_parts refused DeepSpeed's)
            state.optimizer_states[name] = ("distgan", ddp_engine_state(source.checkpoint, name)["optimizer"])


def _load_release(source: InitSource, cfg: Config, models: dict[str, nn.Module], state: InitialState) -> None:
    release = source.release
    generator_state = read_generator(release)
    load_reference_state_dict(models["generator"], generator_state)
    if not (cfg.train.init_discriminator or cfg.train.init_optimizers):
        return
    saved = read_discriminator(release)
    sets = {kind: value for kind, value in saved.items() if not kind.startswith("optim_")}
    if "discriminator" in models:
        for kind, set_state in sets.items():
            load_reference_state_dict(getattr(models["discriminator"], kind), set_state)
    if cfg.train.init_optimizers:
        for name, model in models.items():
            key = f"optim_{name[0]}"
            if key not in saved:
                raise _error(release.discriminator, f"no {key!r} entry to initialise the {name}'s optimizer from")
            parts = {"": generator_state} if name == "generator" else sets
            state.optimizer_states[name] = ("reference", reference_optimizer_state(model, parts, saved[key]))


def _load(source: InitSource, cfg: Config, models: dict[str, nn.Module], state: InitialState) -> None:
    if source.export is not None:
        from safetensors.torch import load_file as load_safetensors

        generator = models["generator"]
        weights = load_safetensors(str(source.export))
        generator.load_state_dict(map_reference_state_dict(weights, generator.state_dict().keys()))
    elif source.checkpoint is not None:
        _load_checkpoint(source, cfg, models, state)
    else:
        _load_release(source, cfg, models, state)


def load_initial_weights(cfg: Config, run_dir: Path, generator: nn.Module, discriminator: nn.Module
                         ) -> InitialState | None:
    """Load ``train.init_from`` into the plain models (a fresh run only); what is left for the
    optimizers, or None when nothing was loaded."""
    if not cfg.train.init_from or next(complete_checkpoints(run_dir, report=lambda _: None), None):
        return None
    source = resolve_init_source(cfg.train.init_from)
    _check_parts(source, cfg)
    models = {"generator": generator}
    if cfg.train.init_discriminator:
        models["discriminator"] = discriminator
    state = InitialState(source, list(models))
    try:
        with torch.no_grad():
            _load(source, cfg, models, state)
    except ConfigError:
        raise
    except (ValueError, RuntimeError, KeyError, OSError) as err:  # also a layout the config checks missed
        raise _error(source.path, f"could not load its weights: {type(err).__name__}: {err}") from err
    return state
