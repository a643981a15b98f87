"""The original code's release formats: file names, ``config.json``, and which models they can hold.

``distgan export --format hifigan|bigvgan`` writes what the original training code writes, so its
inference scripts, its ``train.py`` (to fine-tune) and toolkits built on either load the result:

- HiFi-GAN (jik876/hifi-gan): ``g_XXXXXXXX`` (``{"generator"}``), ``do_XXXXXXXX`` (``{"mpd",
  "msd", "optim_g", "optim_d", "steps", "epoch"}``) and ``config.json`` (its ``config_v1.json`` keys).
  Its code fixes more than the config says: 80 mel bands, MPD and MSD at the paper's sizes, three
  dilations per type-1 residual block and two per type-2 block.
- BigVGAN (NVIDIA/BigVGAN): ``bigvgan_generator.pt`` (``{"generator"}``, what ``from_pretrained``
  reads from a folder) and ``bigvgan_discriminator_optimizer.pt`` (``{"mpd", "mrd", "optim_g",
  "optim_d", "steps", "epoch"}``; ``"mrd"`` holds MRD or CQT-D, whichever ``use_cqtd_instead_of_mrd``
  picks, as its ``train.py`` names it), both of which its ``train.py`` also resumes from, and
  ``config.json`` (its ``configs/*.json`` keys). Its MPD widths are ``[32, 128, 512, 1024, 1024]``
  times ``discriminator_channel_mult``; it has no MSD.

A model the format cannot express is refused with the field, its value and what the format needs.
"""

from __future__ import annotations

from typing import Any

from distgan.config import Config, DiscriminatorConfig, GeneratorConfig

FORMATS = ("hifigan", "bigvgan")
HIFIGAN_N_MELS = 80  # HiFi-GAN's Generator builds its input convolution for 80 bands
HIFIGAN_DILATIONS = {"1": 3, "2": 2}  # dilations its ResBlock1 / ResBlock2 use, whatever the config lists
HIFIGAN_D = {"periods": [2, 3, 5, 7, 11], "mpd_channels": [32, 128, 512, 1024, 1024],
             "mpd_use_spectral_norm": False, "msd_scales": 3,
             "msd_channels": [128, 128, 256, 512, 1024, 1024, 1024]}
BIGVGAN_MPD_WIDTHS = [32, 128, 512, 1024, 1024]  # times discriminator_channel_mult
BIGVGAN_MRD_WIDTH = 32  # times mrd_channel_mult
DIST_CONFIG = {"dist_backend": "nccl", "dist_url": "tcp://localhost:54321", "world_size": 1}


def release_files(fmt: str, step: int) -> tuple[str, str]:
    """The generator's and the discriminator-and-optimizer file's names."""
    if fmt == "hifigan":
        return f"g_{step:08d}", f"do_{step:08d}"
    return "bigvgan_generator.pt", "bigvgan_discriminator_optimizer.pt"


def discriminator_keys(fmt: str, cfg: DiscriminatorConfig) -> list[tuple[str, str]]:
    """``(distgan kind, key in the file)`` in the order the reference's D optimizer holds them
    (both train scripts chain the second set's parameters before MPD's)."""
    if fmt == "hifigan":
        return [("msd", "msd"), ("mpd", "mpd")]
    second = next(kind for kind in cfg.kinds if kind != "mpd")
    return [(second, "mrd"), ("mpd", "mpd")]


def generator_problem(fmt: str, cfg: Config) -> str | None:
    """Why the format cannot hold this generator, or None."""
    generator = cfg.model.generator
    if fmt == "hifigan":
        if generator.family != "hifigan":
            return ("model.generator.family=bigvgan: HiFi-GAN's code has no AMP blocks or Snake activations "
                    "(use --format bigvgan)")
        if cfg.audio.n_mels != HIFIGAN_N_MELS:
            return f"audio.n_mels={cfg.audio.n_mels}: HiFi-GAN's Generator takes {HIFIGAN_N_MELS} mel bands"
        wanted = HIFIGAN_DILATIONS[generator.resblock]
        for i, dilations in enumerate(generator.resblock_dilation_sizes):
            if len(dilations) != wanted:
                return (f"model.generator.resblock_dilation_sizes[{i}]={dilations}: HiFi-GAN's ResBlock"
                        f"{generator.resblock} uses exactly {wanted} dilations")
        return None
    if generator.family != "bigvgan":
        return ("model.generator.family=hifigan: BigVGAN's code has no leaky-ReLU MRF generator "
                "(use --format hifigan)")
    return None


def _mismatches(cfg: DiscriminatorConfig, wanted: dict[str, Any], what: str) -> list[str]:
    return [f"model.discriminator.{field}={getattr(cfg, field)}, but {what} has {value}"
            for field, value in wanted.items() if getattr(cfg, field) != value]


def _mpd_mult(cfg: DiscriminatorConfig) -> float | None:
    """BigVGAN's ``discriminator_channel_mult`` that gives ``mpd_channels``, or None."""
    mult = cfg.mpd_channels[0] / BIGVGAN_MPD_WIDTHS[0]
    widths = [int(width * mult) for width in BIGVGAN_MPD_WIDTHS]
    return mult if widths == cfg.mpd_channels else None


def discriminator_problems(fmt: str, cfg: DiscriminatorConfig) -> list[str]:
    """Why the format cannot hold these discriminators (empty: it can)."""
    if fmt == "hifigan":
        kinds = [] if sorted(cfg.kinds) == ["mpd", "msd"] else [
            f"model.discriminator.kinds={list(cfg.kinds)}, but HiFi-GAN's code trains MPD and MSD"]
        return kinds + _mismatches(cfg, HIFIGAN_D, "HiFi-GAN's code")
    kinds = set(cfg.kinds)
    if len(cfg.kinds) != 2 or kinds not in ({"mpd", "mrd"}, {"mpd", "cqtd"}):
        return [f"model.discriminator.kinds={list(cfg.kinds)}, but BigVGAN's code trains MPD with MRD or "
                "with CQT-D (no MSD)"]
    problems = []
    if _mpd_mult(cfg) is None:
        problems.append(f"model.discriminator.mpd_channels={cfg.mpd_channels}, but BigVGAN's MPD has "
                        f"{BIGVGAN_MPD_WIDTHS} times one multiplier")
    if "mrd" in kinds and len(cfg.mrd_resolutions) != 3:
        problems.append(f"model.discriminator.mrd_resolutions has {len(cfg.mrd_resolutions)} entries, "
                        "but BigVGAN's MRD takes exactly 3")
    if "cqtd" in kinds and min(cfg.cqtd_filters_scale * cfg.cqtd_filters, cfg.cqtd_max_filters) != cfg.cqtd_filters:
        problems.append(f"model.discriminator.cqtd_filters_scale={cfg.cqtd_filters_scale}: BigVGAN's CQT-D then "
                        "widens its first dilated layer's input beyond cqtd_filters (only 1 matches)")
    return problems


def _generator_keys(cfg: GeneratorConfig) -> dict[str, Any]:
    return {"upsample_rates": cfg.upsample_rates, "upsample_kernel_sizes": cfg.upsample_kernel_sizes,
            "upsample_initial_channel": cfg.upsample_initial_channel,
            "resblock_kernel_sizes": cfg.resblock_kernel_sizes,
            "resblock_dilation_sizes": cfg.resblock_dilation_sizes}


def _bigvgan_keys(cfg: Config) -> dict[str, Any]:
    """The generator's activation and output options, the losses, and the discriminators (when
    the format can express them)."""
    generator, d, loss = cfg.model.generator, cfg.model.discriminator, cfg.loss
    keys: dict[str, Any] = {"use_tanh_at_final": generator.use_tanh_at_final,
                            "use_bias_at_final": generator.use_bias_at_final,
                            "activation": generator.activation, "snake_logscale": generator.snake_logscale}
    if not discriminator_problems("bigvgan", d):
        keys |= {"mpd_reshapes": d.periods, "use_spectral_norm": d.mpd_use_spectral_norm,
                 "discriminator_channel_mult": _mpd_mult(d), "use_cqtd_instead_of_mrd": "cqtd" in d.kinds}
        if "mrd" in d.kinds:
            keys |= {"resolutions": d.mrd_resolutions, "mrd_channel_mult": d.mrd_channels / BIGVGAN_MRD_WIDTH,
                     "mrd_use_spectral_norm": d.mrd_use_spectral_norm}
        else:
            keys |= {f"cqtd_{name}": getattr(d, f"cqtd_{name}") for name in (
                "filters", "max_filters", "filters_scale", "dilations", "hop_lengths", "n_octaves",
                "bins_per_octaves", "normalize_volume")}
    keys |= {"use_multiscale_melloss": loss.mel == "multiscale", "lambda_melloss": loss.mel_weight}
    if cfg.optim.generator.grad_clip is not None:
        keys["clip_grad_norm"] = cfg.optim.generator.grad_clip
    return keys


def release_config(fmt: str, cfg: Config, world_size: int) -> dict[str, Any]:
    """``config.json`` for the reference code: the model, the mel front end, and the training
    settings its ``train.py`` reads (batch size over all ``world_size`` ranks, as it divides it)."""
    optim, audio = cfg.optim.generator, cfg.audio
    config: dict[str, Any] = {
        "resblock": cfg.model.generator.resblock, "num_gpus": 0, "batch_size": cfg.data.batch_size * world_size,
        "learning_rate": optim.lr, "adam_b1": optim.betas[0], "adam_b2": optim.betas[1],
        "lr_decay": optim.lr_decay, "seed": cfg.train.seed, **_generator_keys(cfg.model.generator)}
    if fmt == "bigvgan":
        config |= _bigvgan_keys(cfg)
    return config | {
        "segment_size": cfg.data.segment_samples, "num_mels": audio.n_mels, "num_freq": audio.n_fft // 2 + 1,
        "n_fft": audio.n_fft, "hop_size": audio.hop_length, "win_size": audio.win_length,
        "sampling_rate": audio.sample_rate, "fmin": audio.fmin, "fmax": audio.fmax,
        "fmax_for_loss": audio.fmax_loss,
        "num_workers": cfg.data.num_workers, "dist_config": DIST_CONFIG}
