"""Cross-field checks of a config that a type system cannot express."""

from __future__ import annotations

import math

from distgan.config.schema import QUALITY_METRICS, Config, ConfigError, OptimizerConfig


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
    need(cfg.log.val_every_steps >= 0, "log.val_every_steps must be >= 0 (0 disables)")
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


