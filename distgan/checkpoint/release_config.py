"""A HiFi-GAN or BigVGAN ``config.json`` held against a distgan config, key by key.

Weights are bound to the settings they were trained with: the mel front end (a generator fed mels
of another rate, hop or band count turns them into noise) and the layout (another one does not
load). Each difference is reported with the JSON key and its value beside the distgan field and
its value, so a user can fix either side. Keys are the reference code's; where its code fixes a
value rather than reading it (HiFi-GAN's discriminators), the fixed value stands in.
"""

from __future__ import annotations

from typing import Any

from distgan.config import Config

_MISSING = object()
# The mel front end: (config.json key, distgan field).
AUDIO_KEYS = (("sampling_rate", "audio.sample_rate"), ("hop_size", "audio.hop_length"),
              ("num_mels", "audio.n_mels"), ("n_fft", "audio.n_fft"), ("win_size", "audio.win_length"),
              ("fmin", "audio.fmin"), ("fmax", "audio.fmax"))
GENERATOR_KEYS = ("resblock", "upsample_rates", "upsample_kernel_sizes", "upsample_initial_channel",
                  "resblock_kernel_sizes", "resblock_dilation_sizes")
# BigVGAN's own generator keys and the defaults its code takes when a config leaves them out.
BIGVGAN_GENERATOR_KEYS = {"activation": _MISSING, "snake_logscale": _MISSING, "use_tanh_at_final": True,
                          "use_bias_at_final": True}
# MPD's channel widths at discriminator_channel_mult 1 (both references), and HiFi-GAN's fixed sets.
MPD_CHANNELS = (32, 128, 512, 1024, 1024)
HIFIGAN_DISCRIMINATOR = {"kinds": ["mpd", "msd"], "periods": [2, 3, 5, 7, 11], "mpd_channels": list(MPD_CHANNELS),
                         "mpd_use_spectral_norm": False, "msd_scales": 3,
                         "msd_channels": [128, 128, 256, 512, 1024, 1024, 1024]}
# BigVGAN's CQT-D keys and their defaults in its code (``cqtd_normalize_volume`` is read the same way).
CQTD_DEFAULTS = {"cqtd_filters": 32, "cqtd_max_filters": 1024, "cqtd_filters_scale": 1, "cqtd_dilations": [1, 2, 4],
                 "cqtd_hop_lengths": [512, 256, 256], "cqtd_n_octaves": [9, 9, 9],
                 "cqtd_bins_per_octaves": [24, 36, 48], "cqtd_normalize_volume": False}


def _field(cfg: Config, dotted: str) -> Any:
    value: Any = cfg
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _same(a: Any, b: Any) -> bool:
    """Equal as config values: lists and tuples alike, ``true`` never equal to ``1``."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


class _Differences:
    def __init__(self, json: dict[str, Any], cfg: Config) -> None:
        self.json, self.cfg, self.found = json, cfg, []

    def key(self, key: str, dotted: str, default: Any = _MISSING, convert: Any = None) -> None:
        """config.json's ``key`` (or ``default`` where its code has one) against distgan's ``dotted``."""
        value = self.json.get(key, default)
        ours = _field(self.cfg, dotted)
        if value is _MISSING:
            self.found.append(f"config.json has no {key!r} (distgan's {dotted} is {ours!r})")
        elif not _same(convert(value) if convert else value, ours):
            self.found.append(f"config.json {key}={value!r} but {dotted}={ours!r}")

    def fixed(self, what: str, value: Any, dotted: str) -> None:
        ours = _field(self.cfg, dotted)
        if not _same(value, ours):
            self.found.append(f"{what} is {value!r} but {dotted}={ours!r}")


def release_differences(family: str, json: dict[str, Any], cfg: Config, second_set: str | None) -> list[str]:
    """Every setting in which the release (its ``config.json``, of code ``family``) and ``cfg``
    differ; with ``second_set`` (the release's second discriminator set, ``msd``/``mrd``/``cqtd``)
    the discriminator's too."""
    found = _Differences(json, cfg)
    for key, dotted in AUDIO_KEYS:
        found.key(key, dotted)
    found.fixed("the release's generator family", family, "model.generator.family")
    for key in GENERATOR_KEYS:
        found.key(key, f"model.generator.{key}", convert=str if key == "resblock" else None)
    if family == "bigvgan":
        for key, default in BIGVGAN_GENERATOR_KEYS.items():
            found.key(key, f"model.generator.{key}", default)
    if second_set is None:
        return found.found
    if family == "hifigan":
        for name, value in HIFIGAN_DISCRIMINATOR.items():
            found.fixed(f"HiFi-GAN's {name} (fixed in its code)", value, f"model.discriminator.{name}")
        return found.found
    _bigvgan_discriminator(found, second_set)
    return found.found


def _bigvgan_discriminator(found: _Differences, second_set: str) -> None:
    found.fixed("the release's discriminator sets", ["mpd", second_set], "model.discriminator.kinds")
    found.key("mpd_reshapes", "model.discriminator.periods")
    found.key("use_spectral_norm", "model.discriminator.mpd_use_spectral_norm")
    found.key("discriminator_channel_mult", "model.discriminator.mpd_channels",
              convert=lambda mult: [int(c * mult) for c in MPD_CHANNELS])
    if second_set == "mrd":
        found.key("resolutions", "model.discriminator.mrd_resolutions")
        mult = found.json.get("mrd_channel_mult", found.json.get("discriminator_channel_mult", 1))
        found.fixed(f"MRD's width (32 x channel mult {mult})", int(32 * mult), "model.discriminator.mrd_channels")
        spectral = found.json.get("mrd_use_spectral_norm", found.json.get("use_spectral_norm", False))
        found.fixed("MRD's use_spectral_norm", spectral, "model.discriminator.mrd_use_spectral_norm")
    elif second_set == "cqtd":
        for key, default in CQTD_DEFAULTS.items():
            found.key(key, f"model.discriminator.{key}", default)
