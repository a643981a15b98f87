"""Cross-field checks of a config that a type system cannot express."""

from __future__ import annotations

import dataclasses

from distgan.config.schema import (
    QUALITY_METRICS,
    Config,
    ConfigError,
    DiscriminatorConfig,
    OptimizerConfig,
)

# Lowest CQT bin of nnAudio's CQT2010v2 (its default fmin, which BigVGAN keeps), Hz.
CQT_FMIN = 32.70


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
    from distgan.families import family_of

    spec = family_of(cfg)
    _check_unread_settings(cfg, spec)
    _check_losses(cfg)
    spec.check(cfg)
    if "model.discriminator" in spec.reads:
        _check_discriminators(cfg)


def _changed(section: object, default: object) -> list[str]:
    """The fields of ``section`` that differ from their defaults in ``default``."""
    return [f.name for f in dataclasses.fields(section) if getattr(section, f.name) != getattr(default, f.name)]  # type: ignore[arg-type]


def _check_unread_settings(cfg: Config, spec: object) -> None:
    """A setting changed for a family that does not read it would silently do nothing: refuse it,
    naming the families that read it (``FamilySpec.reads``; an empty list is "off", not a change)."""
    from distgan.families import OPTIONAL_SETTINGS, family_names, get_family

    default = Config()
    unread = []
    for dotted in (s for s in OPTIONAL_SETTINGS if s not in spec.reads):  # type: ignore[attr-defined]
        section, _, name = dotted.rpartition(".")
        ours, theirs = getattr(_at(cfg, section), name), getattr(_at(default, section), name)
        if dataclasses.is_dataclass(ours):
            unread += [f"{dotted}.{field}" for field in _changed(ours, theirs)]
        elif ours != theirs and ours != []:
            unread.append(dotted)
    if not unread:
        return
    if spec.refusal is not None:  # type: ignore[attr-defined]
        raise ConfigError(spec.refusal(unread))  # type: ignore[attr-defined]
    readers = [name for name in family_names()
               if all(any(key.startswith(s) for s in get_family(name).reads) for key in unread)]
    raise ConfigError(f"{', '.join(unread)} only applies to model.generator.family: {', '.join(readers)} "
                      f"(this generator is {spec.name}, which does not read it)")  # type: ignore[attr-defined]


def _at(cfg: object, dotted: str) -> object:
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _check_discriminators(cfg: Config) -> None:
    d = cfg.model.discriminator
    _need(len(set(d.kinds)) == len(d.kinds), f"model.discriminator.kinds lists a set twice: {d.kinds}")
    _need(len(d.mpd_channels) >= 2, "model.discriminator.mpd_channels needs at least two entries")
    _need(len(d.msd_channels) == 7, "model.discriminator.msd_channels needs exactly seven entries")
    _need(all(c % 16 == 0 for c in d.msd_channels[1:6]),
          "model.discriminator.msd_channels[1:6] must be multiples of 16 (grouped convolutions)")
    _need(d.msd_scales >= 0, "model.discriminator.msd_scales must be >= 0")
    _need(all(len(r) == 3 and r[0] >= 2 and 1 <= r[1] and 1 <= r[2] <= r[0] for r in d.mrd_resolutions),
          "model.discriminator.mrd_resolutions: each entry is [n_fft, hop_length, win_length], win_length <= n_fft")
    _need(d.mrd_channels >= 1, "model.discriminator.mrd_channels must be at least 1")
    if "cqtd" in d.kinds:
        _check_cqtd(d, cfg.audio.sample_rate)
    if "msstftd" in d.kinds:
        _check_msstftd(d, cfg.data.segment_samples)
    sizes = {"mpd": len(d.periods), "msd": d.msd_scales, "mrd": len(d.mrd_resolutions),
             "cqtd": len(d.cqtd_hop_lengths), "msstftd": len(d.msstftd_n_ffts)}
    _need(sum(sizes[kind] for kind in d.kinds) > 0,
          f"the discriminator set is empty (model.discriminator.kinds={d.kinds})")


def _check_cqtd(d: DiscriminatorConfig, sample_rate: int) -> None:
    scales = (d.cqtd_hop_lengths, d.cqtd_n_octaves, d.cqtd_bins_per_octaves)
    _need(len(set(map(len, scales))) == 1,
          "model.discriminator.cqtd_hop_lengths, cqtd_n_octaves and cqtd_bins_per_octaves need one entry per scale")
    _need(all(v >= 1 for values in scales for v in values) and d.cqtd_filters >= 1 and d.cqtd_max_filters >= 1
          and d.cqtd_filters_scale >= 1 and all(v >= 1 for v in d.cqtd_dilations),
          "model.discriminator.cqtd_*: sizes, octaves, filters and dilations must be at least 1")
    for octaves, bins in zip(d.cqtd_n_octaves, d.cqtd_bins_per_octaves, strict=True):
        # The CQT runs at twice the sample rate; nnAudio refuses a top bin above its Nyquist frequency.
        top = CQT_FMIN * 2 ** (octaves - 1 / bins)
        _need(top <= sample_rate, f"model.discriminator.cqtd_n_octaves: {octaves} octaves of {bins} bins from "
              f"{CQT_FMIN} Hz reach {top:.0f} Hz, above audio.sample_rate={sample_rate} (the CQT's Nyquist "
              "frequency at twice the rate); use fewer octaves or a higher sample rate")


def _check_msstftd(d: DiscriminatorConfig, segment_samples: int) -> None:
    scales = (d.msstftd_n_ffts, d.msstftd_hop_lengths, d.msstftd_win_lengths)
    _need(len(set(map(len, scales))) == 1,
          "model.discriminator.msstftd_n_ffts, msstftd_hop_lengths and msstftd_win_lengths need one entry per scale")
    _need(all(n >= 2 and 1 <= hop and 1 <= win <= n for n, hop, win in zip(*scales, strict=True)),
          "model.discriminator.msstftd_*: each scale needs n_fft >= 2, hop_length >= 1 and 1 <= win_length <= n_fft")
    _need(d.msstftd_filters >= 1 and d.msstftd_max_filters >= 1 and d.msstftd_filters_scale >= 1
          and all(v >= 1 for v in d.msstftd_dilations),
          "model.discriminator.msstftd_*: filters and dilations must be at least 1")
    # The STFT is not centred: a segment shorter than a window has no frame.
    _need(segment_samples >= max(d.msstftd_n_ffts, default=0),
          f"data.segment_samples={segment_samples} is shorter than the widest MS-STFTD window "
          f"(model.discriminator.msstftd_n_ffts: {max(d.msstftd_n_ffts, default=0)})")


def _check_losses(cfg: Config) -> None:
    loss, ms = cfg.loss, cfg.loss.multiscale_mel
    for name in ("adv_weight", "fm_weight", "mel_weight"):
        _need(getattr(loss, name) >= 0, f"loss.{name} must be >= 0, got {getattr(loss, name)}")
    balancer = loss.balancer
    _need(balancer.total_norm > 0 and balancer.epsilon >= 0 and 0 <= balancer.ema_decay <= 1,
          "loss.balancer: total_norm must be positive, epsilon >= 0 and ema_decay in [0, 1]")
    _need(loss.generator_adversarial != "mse" or loss.adversarial == "bce",
          f"loss.generator_adversarial=mse compares D's probability (a sigmoid of its logit) with the real label, "
          f"which needs a discriminator trained with loss.adversarial=bce, not {loss.adversarial}")
    if loss.mel != "multiscale":
        return
    _need(len(ms.n_mels) == len(ms.window_lengths) >= 1,
          "loss.multiscale_mel.n_mels and window_lengths need one entry per scale")
    _need(all(n >= 1 for n in ms.n_mels) and all(w >= 4 for w in ms.window_lengths),
          "loss.multiscale_mel: n_mels must be >= 1 and window_lengths >= 4 (the hop is a quarter window)")
    _need(ms.clamp_eps > 0 and ms.power > 0, "loss.multiscale_mel.clamp_eps and power must be positive")
    _need(cfg.data.segment_samples > max(ms.window_lengths) // 2,
          f"data.segment_samples={cfg.data.segment_samples} must exceed half the longest "
          f"loss.multiscale_mel.window_lengths ({max(ms.window_lengths)}; reflect padding)")


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
    for key in ("shards", "val_shards"):
        specs = getattr(data, key)
        _need(not isinstance(specs, list) or (specs and all(spec.strip() for spec in specs)),
              f"data.{key}: a list of shard specs must hold at least one, and no empty one (got {specs!r})")
    _need(0.0 <= data.val_fraction < 1.0, f"data.val_fraction must lie in [0, 1), got {data.val_fraction}")
    _need(data.val_fraction == 0.0 or not data.val_shards,
          "data.val_fraction holds validation samples out of data.shards, data.val_shards names other "
          "shards: set one of them")


def _check_loop(cfg: Config) -> None:
    train, log, faults = cfg.train, cfg.log, cfg.faults
    _need(train.max_steps >= 0, "train.max_steps must be >= 0")
    _need(train.d_steps_per_g >= 1, "train.d_steps_per_g must be at least 1")
    _need(train.mel_only_steps >= 0, "train.mel_only_steps must be >= 0")
    _need(train.d_warmup_steps >= 0, "train.d_warmup_steps must be >= 0")
    _need(bool(train.init_from) or not (train.init_discriminator or train.init_optimizers),
          "train.init_discriminator and train.init_optimizers take weights from train.init_from, which is not set")
    _need(train.grad_accum >= 1, "train.grad_accum must be at least 1")
    _need(train.ema_decay is None or 0.0 < train.ema_decay < 1.0,
          f"train.ema_decay must be between 0 and 1 (exclusive), or null for no average; got {train.ema_decay}")
    _need(log.every_steps >= 1, "log.every_steps must be at least 1")
    _need(log.val_every_steps >= 0, "log.val_every_steps must be >= 0 (0 disables)")
    _need(log.val_every_minutes >= 0, "log.val_every_minutes must be >= 0 (0 disables)")
    _need(log.val_clips >= 0, "log.val_clips must be >= 0")
    _need(log.val_generated_clips >= 2, f"log.val_generated_clips must be at least 2 (a spread needs a pair), "
          f"got {log.val_generated_clips}")
    unknown = [name for name in log.val_metrics if name not in QUALITY_METRICS]
    _need(not unknown, f"log.val_metrics: unknown metrics {unknown}; choose from {list(QUALITY_METRICS)}")
    _need(cfg.checkpoint.every_steps >= 0, "checkpoint.every_steps must be >= 0 (0: only at the end)")
    _need(cfg.checkpoint.keep_last >= 1, "checkpoint.keep_last must be at least 1")
    _need(faults.max_consecutive_skips >= 1, "faults.max_consecutive_skips must be at least 1")
    _need(faults.rollback_lr_factor is None or 0 < faults.rollback_lr_factor <= 1,
          "faults.rollback_lr_factor must lie in (0, 1] or be null")
    _need(faults.watchdog_minutes >= 0, "faults.watchdog_minutes must be >= 0 (0 disables)")
    _need(faults.roll_call_seconds > 0, "faults.roll_call_seconds must be positive")
    _need(cfg.dist.timeout_minutes > 0, "dist.timeout_minutes must be positive")
    _need(bool(cfg.perf.compile_backend.strip()), "perf.compile_backend must name a torch.compile backend")


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
