"""Cross-field checks of a config that a type system cannot express."""

from __future__ import annotations

import math

from distgan.config.schema import QUALITY_METRICS, Config, ConfigError, OptimizerConfig


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def validate(cfg: Config) -> None:
    """Cross-field checks that a type system cannot express (every float is already finite)."""
    _check_audio(cfg)
    _check_model(cfg)
    _check_data(cfg)
    _check_loop(cfg)
    _check_optim(cfg)


def _check_audio(cfg: Config) -> None:
    a = cfg.audio
    for name in ("sample_rate", "n_fft", "hop_length", "win_length", "n_mels"):
        _need(getattr(a, name) >= 1, f"audio.{name} must be at least 1, got {getattr(a, name)}")
    _need(a.win_length <= a.n_fft, "audio.win_length must not exceed audio.n_fft")
    _need((a.n_fft - a.hop_length) % 2 == 0, "audio.n_fft - audio.hop_length must be even (symmetric padding)")
    _need(a.fmin >= 0, f"audio.fmin must be >= 0, got {a.fmin}")
    for name in ("fmax", "fmax_loss"):
        fmax = getattr(a, name)
        _need(fmax is None or a.fmin < fmax <= a.sample_rate / 2,
              f"audio.{name}={fmax} must lie in (fmin, sample_rate/2]")


def _check_model(cfg: Config) -> None:
    a, g, d = cfg.audio, cfg.model.generator, cfg.model.discriminator
    _need(math.prod(g.upsample_rates) == a.hop_length,
          f"model.generator.upsample_rates multiply to {math.prod(g.upsample_rates)}, "
          f"but audio.hop_length is {a.hop_length}; they must be equal")
    _need(len(g.upsample_kernel_sizes) == len(g.upsample_rates),
          "model.generator.upsample_kernel_sizes needs one entry per upsample rate")
    _need(len(g.resblock_dilation_sizes) == len(g.resblock_kernel_sizes),
          "model.generator.resblock_dilation_sizes needs one list per resblock kernel size")
    _need(g.upsample_initial_channel % 2 ** len(g.upsample_rates) == 0,
          "model.generator.upsample_initial_channel must be divisible by 2**len(upsample_rates)")
    _need(len(d.mpd_channels) >= 2, "model.discriminator.mpd_channels needs at least two entries")
    _need(len(d.msd_channels) == 7, "model.discriminator.msd_channels needs exactly seven entries")
    _need(all(c % 16 == 0 for c in d.msd_channels[1:6]),
          "model.discriminator.msd_channels[1:6] must be multiples of 16 (grouped convolutions)")
    _need(d.msd_scales >= 0 and (d.msd_scales > 0 or d.periods), "the discriminator set is empty")
    for name in ("adv_weight", "fm_weight", "mel_weight"):
        _need(getattr(cfg.loss, name) >= 0, f"loss.{name} must be >= 0, got {getattr(cfg.loss, name)}")


def _check_data(cfg: Config) -> None:
    data = cfg.data
    _need(data.segment_samples >= 1 and data.segment_samples % cfg.audio.hop_length == 0,
          f"data.segment_samples={data.segment_samples} must be a multiple of "
          f"audio.hop_length={cfg.audio.hop_length}, and positive")
    _need(data.batch_size >= 1, "data.batch_size must be at least 1")
    _need(data.num_workers >= 0, "data.num_workers must be >= 0")
    _need(data.prefetch_factor >= 1, f"data.prefetch_factor must be at least 1, got {data.prefetch_factor}")
    _need(data.shuffle_buffer >= 1, f"data.shuffle_buffer must be at least 1, got {data.shuffle_buffer}")
    _need(data.synthetic.speakers >= 1 and data.synthetic.utterances >= 1,
          "data.synthetic.speakers and data.synthetic.utterances must be at least 1")


def _check_loop(cfg: Config) -> None:
    train, log, faults = cfg.train, cfg.log, cfg.faults
    _need(train.max_steps >= 0, "train.max_steps must be >= 0")
    _need(train.d_steps_per_g >= 1, "train.d_steps_per_g must be at least 1")
    _need(train.mel_only_steps >= 0, "train.mel_only_steps must be >= 0")
    _need(train.grad_accum >= 1, "train.grad_accum must be at least 1")
    _need(log.every_steps >= 1, "log.every_steps must be at least 1")
    _need(log.val_every_steps >= 0, "log.val_every_steps must be >= 0 (0 disables)")
    _need(log.val_clips >= 0, "log.val_clips must be >= 0")
    unknown = [name for name in log.val_metrics if name not in QUALITY_METRICS]
    _need(not unknown, f"log.val_metrics: unknown metrics {unknown}; choose from {list(QUALITY_METRICS)}")
    _need(cfg.checkpoint.every_steps >= 0, "checkpoint.every_steps must be >= 0 (0: only at the end)")
    _need(cfg.checkpoint.keep_last >= 1, "checkpoint.keep_last must be at least 1")
    _need(faults.max_consecutive_skips >= 1, "faults.max_consecutive_skips must be at least 1")
    _need(faults.rollback_lr_factor is None or 0 < faults.rollback_lr_factor <= 1,
          "faults.rollback_lr_factor must lie in (0, 1] or be null")
    _need(faults.watchdog_minutes >= 0, "faults.watchdog_minutes must be >= 0 (0 disables)")
    _need(cfg.dist.timeout_minutes > 0, "dist.timeout_minutes must be positive")


def _check_optim(cfg: Config) -> None:
    for model in ("generator", "discriminator"):
        o: OptimizerConfig = getattr(cfg.optim, model)
        _need(o.lr > 0, f"optim.{model}.lr must be positive")
        _need(len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), f"optim.{model}.betas must be two numbers in [0, 1)")
        _need(o.eps > 0, f"optim.{model}.eps must be positive, got {o.eps}")
        _need(o.weight_decay >= 0, f"optim.{model}.weight_decay must be >= 0")
        _need(0 < o.lr_decay <= 1, f"optim.{model}.lr_decay must lie in (0, 1]")
        _need(o.warmup_steps >= 0, f"optim.{model}.warmup_steps must be >= 0")
        _need(o.grad_clip is None or o.grad_clip > 0, f"optim.{model}.grad_clip must be positive or null")
