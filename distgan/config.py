"""Typed run configuration: dataclasses read from YAML, with dotted command-line overrides.

The dataclasses are the only way settings reach code. Defaults follow the HiFi-GAN paper (V1 on
LJSpeech); recipes in ``configs/`` are YAML files that override them. Everything is checked here
(unknown keys, wrong types, inconsistent numbers) before any process group starts, so a typo costs
seconds rather than a queued cluster job.

This module imports nothing heavier than PyYAML: ``distgan --help`` and config errors stay fast.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key."""


# The columns of distgan.evaluation.metrics.METRICS (kept torch-free here; a test checks they agree).
QUALITY_METRICS = ("mel_l1", "mrstft", "pesq", "stoi", "f0_rmse_cents", "f0_rmse_hz", "vuv_f1")


@dataclass
class AudioConfig:
    """Sample rate and mel-spectrogram parameters shared by data, model input and losses."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = 8000.0
    # HiFi-GAN computes its mel loss over the full band (``fmax_for_loss: null`` in its configs).
    fmax_loss: float | None = None


@dataclass
class GeneratorConfig:
    """HiFi-GAN generator; the defaults are V1. ``prod(upsample_rates)`` must equal the hop length."""

    upsample_rates: list[int] = field(default_factory=lambda: [8, 8, 2, 2])
    upsample_kernel_sizes: list[int] = field(default_factory=lambda: [16, 16, 4, 4])
    upsample_initial_channel: int = 512
    resblock: Literal["1", "2"] = "1"
    resblock_kernel_sizes: list[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilation_sizes: list[list[int]] = field(
        default_factory=lambda: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    )


@dataclass
class DiscriminatorConfig:
    """Multi-period (MPD) and multi-scale (MSD) discriminators, with HiFi-GAN's channel widths."""

    periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    # Output channels of MPD's (kernel 5, stride 3) convolutions; the last one has stride 1.
    mpd_channels: list[int] = field(default_factory=lambda: [32, 128, 512, 1024, 1024])
    # Number of MSD scales (1 = raw audio only; each further one average-pools by 2).
    msd_scales: int = 3
    # Output channels of MSD's seven convolutions (grouped 1, 4, 16, 16, 16, 16, 1).
    msd_channels: list[int] = field(default_factory=lambda: [128, 128, 256, 512, 1024, 1024, 1024])


@dataclass
class ModelConfig:
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)


@dataclass
class LossConfig:
    """Loss weights, keyed by the names the trainer logs (``g/adv``, ``g/fm``, ``g/mel``)."""

    adversarial: Literal["lsgan", "hinge", "bce"] = "lsgan"
    adv_weight: float = 1.0
    fm_weight: float = 2.0
    mel_weight: float = 45.0


@dataclass
class OptimizerConfig:
    """AdamW and its learning-rate schedule for one model (HiFi-GAN: same for G and D)."""

    lr: float = 2.0e-4
    betas: list[float] = field(default_factory=lambda: [0.8, 0.99])
    eps: float = 1.0e-8  # torch.optim.AdamW default, as in the HiFi-GAN code
    weight_decay: float = 0.01
    # Exponential decay, applied once per ``lr_decay_every`` (HiFi-GAN: 0.999 per epoch).
    lr_decay: float = 0.999
    lr_decay_every: Literal["epoch", "step"] = "epoch"
    warmup_steps: int = 0
    # Max gradient norm; null means no clipping (HiFi-GAN does not clip).
    grad_clip: float | None = None


@dataclass
class OptimConfig:
    generator: OptimizerConfig = field(default_factory=OptimizerConfig)
    discriminator: OptimizerConfig = field(default_factory=OptimizerConfig)


@dataclass
class SyntheticConfig:
    """The built-in synthetic corpus used when ``data.shards`` is empty."""

    speakers: int = 4
    utterances: int = 48
    seed: int = 0


@dataclass
class DataConfig:
    """Where the shards are and how segments are cut and batched (batch size is per rank)."""

    # A folder holding index.json, an index.json path, a brace pattern or a pipe: URL.
    # Empty: the built-in synthetic corpus, written once to the cache folder.
    shards: str | None = None
    # Validation shards; empty means the "val" split of ``shards``' index.json.
    val_shards: str | None = None
    segment_samples: int = 8192
    batch_size: int = 16
    num_workers: int = 2
    prefetch_factor: int = 2
    shuffle_buffer: int = 128
    # What to do with clips shorter than a segment: skip them (counted) or zero-pad them.
    short_clips: Literal["skip", "pad"] = "skip"
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class TrainConfig:
    max_steps: int = 2_500_000
    seed: int = 1234
    precision: Literal["no", "bf16", "fp16"] = "no"
    # Discriminator updates per generator update; every step updates D, every n-th also G.
    d_steps_per_g: int = 1
    # Steps at the start during which only the generator trains, on the mel loss alone.
    mel_only_steps: int = 0
    grad_accum: int = 1


@dataclass
class LogConfig:
    every_steps: int = 100
    # Validation audio, spectrogram images and validation metrics.
    audio_every_steps: int = 5000
    val_clips: int = 4
    # Quality metrics computed on the validation clips at each validation (rank 0), from
    # distgan.evaluation.metrics.METRICS; the f0 metrics (pYIN) cost ~0.5 s per clip.
    val_metrics: list[str] = field(default_factory=lambda: ["mrstft", "pesq", "stoi"])
    progress_bar: bool = True


@dataclass
class CheckpointConfig:
    every_steps: int = 5000
    keep_last: int = 3


@dataclass
class FaultConfig:
    """How the run reacts to numerical faults and stalls."""

    # Stop after this many consecutive updates skipped for non-finite losses or gradients.
    max_consecutive_skips: int = 20
    # Instead of stopping, reload the last checkpoint and scale both learning rates by this.
    rollback_lr_factor: float | None = None
    # Exit non-zero when a rank makes no progress for this long (0 disables the watchdog).
    watchdog_minutes: float = 30.0


@dataclass
class DistConfig:
    """Distributed settings that are not chosen by the launcher."""

    # DeepSpeed JSON used when the launcher does not name one (e.g. under torchrun).
    deepspeed_config: str | None = None
    # "auto": nccl with CUDA, gloo otherwise.
    backend: Literal["auto", "nccl", "gloo"] = "auto"
    timeout_minutes: float = 30.0


@dataclass
class Config:
    audio: AudioConfig = field(default_factory=AudioConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    dist: DistConfig = field(default_factory=DistConfig)


# ---------------------------------------------------------------------------------------------
# Reading, overriding, validating


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML recipe (or the defaults), apply ``a.b=value`` overrides, validate."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        raw = yaml.safe_load(path.read_text()) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
    for item in overrides:
        _apply_override(raw, item)
    cfg = from_dict(Config, raw)
    validate(cfg)
    return cfg


def _apply_override(raw: dict[str, Any], item: str) -> None:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r} is not of the form section.key=value")
    parts = key.strip().split(".")
    _check_path(Config, parts)
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = yaml.safe_load(value) if value.strip() else None


def _check_path(cls: type, parts: list[str], prefix: str = "") -> None:
    """Fail on an unknown dotted key before anything else is parsed."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    head = parts[0]
    if head not in names:
        raise ConfigError(_unknown_key(prefix + head, head, names))
    hint = _resolved_hints(cls)[head]
    if len(parts) > 1:
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            raise ConfigError(f"{prefix}{head} is a value, not a section (got {'.'.join(parts)})")
        _check_path(hint, parts[1:], prefix + head + ".")


def _unknown_key(full: str, name: str, names: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.5)
    section = full.rpartition(".")[0]
    valid = f"{section}.{close[0]}" if section and close else (close[0] if close else None)
    return f"unknown config key {full!r}" + (f"; did you mean {valid!r}?" if valid else "")


def _resolved_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type, data: dict[str, Any] | None, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from plain data, checking every key and type."""
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = _resolved_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise ConfigError(_unknown_key(prefix + str(key), str(key), names))
    kwargs = {}
    for name in names:
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], prefix + name)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_dict(hint, value, key + ".")
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} matches none of {hint}")
    if origin is Literal:
        choices = typing.get_args(hint)
        if value is False and "no" in choices:  # YAML 1.1 reads a bare `no` as false
            value = "no"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value) if str(value) in choices else value
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {list(choices)}")
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {hint}")  # pragma: no cover - a bug in this file


def validate(cfg: Config) -> None:
    """Cross-field checks that a type system cannot express."""
    a, g, d, data, train = cfg.audio, cfg.model.generator, cfg.model.discriminator, cfg.data, cfg.train

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    need(a.sample_rate > 0, "audio.sample_rate must be positive")
    need(a.win_length <= a.n_fft, "audio.win_length must not exceed audio.n_fft")
    need((a.n_fft - a.hop_length) % 2 == 0, "audio.n_fft - audio.hop_length must be even (symmetric padding)")
    for name in ("fmax", "fmax_loss"):
        fmax = getattr(a, name)
        need(fmax is None or a.fmin < fmax <= a.sample_rate / 2,
             f"audio.{name}={fmax} must lie in (fmin, sample_rate/2]")
    need(math.prod(g.upsample_rates) == a.hop_length,
         f"model.generator.upsample_rates multiply to {math.prod(g.upsample_rates)}, "
         f"but audio.hop_length is {a.hop_length}; they must be equal")
    need(len(g.upsample_kernel_sizes) == len(g.upsample_rates),
         "model.generator.upsample_kernel_sizes needs one entry per upsample rate")
    need(len(g.resblock_dilation_sizes) == len(g.resblock_kernel_sizes),
         "model.generator.resblock_dilation_sizes needs one list per resblock kernel size")
    need(g.upsample_initial_channel % 2 ** len(g.upsample_rates) == 0,
         "model.generator.upsample_initial_channel must be divisible by 2**len(upsample_rates)")
    need(len(d.mpd_channels) >= 2, "model.discriminator.mpd_channels needs at least two entries")
    need(len(d.msd_channels) == 7, "model.discriminator.msd_channels needs exactly seven entries")
    need(all(c % 16 == 0 for c in d.msd_channels[1:6]),
         "model.discriminator.msd_channels[1:6] must be multiples of 16 (grouped convolutions)")
    need(d.msd_scales >= 0 and (d.msd_scales > 0 or d.periods), "the discriminator set is empty")
    need(data.segment_samples % a.hop_length == 0,
         f"data.segment_samples={data.segment_samples} must be a multiple of audio.hop_length={a.hop_length}")
    need(data.batch_size >= 1, "data.batch_size must be at least 1")
    need(data.num_workers >= 0, "data.num_workers must be >= 0")
    need(train.max_steps >= 0, "train.max_steps must be >= 0")
    need(train.d_steps_per_g >= 1, "train.d_steps_per_g must be at least 1")
    need(train.grad_accum >= 1, "train.grad_accum must be at least 1")
    need(cfg.log.every_steps >= 1, "log.every_steps must be at least 1")
    need(cfg.log.audio_every_steps >= 0, "log.audio_every_steps must be >= 0 (0 disables)")
    need(cfg.checkpoint.every_steps >= 0, "checkpoint.every_steps must be >= 0 (0: only at the end)")
    need(cfg.checkpoint.keep_last >= 1, "checkpoint.keep_last must be at least 1")
    unknown = [name for name in cfg.log.val_metrics if name not in QUALITY_METRICS]
    need(not unknown, f"log.val_metrics: unknown metrics {unknown}; choose from {list(QUALITY_METRICS)}")
    for model in ("generator", "discriminator"):
        o: OptimizerConfig = getattr(cfg.optim, model)
        need(o.lr > 0, f"optim.{model}.lr must be positive")
        need(len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), f"optim.{model}.betas must be two numbers in [0, 1)")
        need(0 < o.lr_decay <= 1, f"optim.{model}.lr_decay must lie in (0, 1]")
        need(o.grad_clip is None or o.grad_clip > 0, f"optim.{model}.grad_clip must be positive or null")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(dump_config(cfg))


def config_from_yaml_text(text: str) -> Config:
    """Rebuild a saved (resolved) config, e.g. from a checkpoint or an exported model."""
    cfg = from_dict(Config, yaml.safe_load(text) or {})
    validate(cfg)
    return cfg


def iter_fields(cls: type = Config, prefix: str = "") -> typing.Iterator[tuple[str, Any, Any]]:
    """Yield ``(dotted_name, type, default)`` for every leaf field; used for the README reference."""
    hints = _resolved_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            yield from iter_fields(hint, prefix + f.name + ".")
        else:
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            yield prefix + f.name, hint, default
