"""A release's ``config.json`` (the original code's hyperparameters) held against a distgan config.

Weights are bound to the settings they were trained with: the mel front end (a generator fed mels
of another rate, hop or band count turns them into noise) and the layout (another one does not
load). Each difference is reported with the JSON key and its value beside the distgan field and
its value, so a user can fix either side. Keys are the reference code's; where its code fixes a
value rather than reading it (HiFi-GAN's discriminators), the fixed value stands in. What is the
format's own (its generator and discriminator keys) its ``ReleaseFormat`` checks, from the family
folder (``distgan/families/*/release.py``); this module holds what every format shares. Torch-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distgan.config import Config

_MISSING = object()
# The mel front end: (config.json key, distgan field).
AUDIO_KEYS = (("sampling_rate", "audio.sample_rate"), ("hop_size", "audio.hop_length"),
              ("num_mels", "audio.n_mels"), ("n_fft", "audio.n_fft"), ("win_size", "audio.win_length"),
              ("fmin", "audio.fmin"), ("fmax", "audio.fmax"))


class ReleaseError(ValueError):
    """A release folder or file is incomplete or not what it claims; the message names the file."""


def load_release_file(path: Path) -> Any:
    """A release's weights file, read weights-only (``files.load_file``, memory-mapped): a pickle that
    needs code, or a file torch cannot read, is a ``ReleaseError`` naming it."""
    from distgan.checkpoint.files import UnsafeCheckpointFile, load_file

    try:
        return load_file(path, mmap=True)
    except UnsafeCheckpointFile as err:
        raise ReleaseError(str(err)) from err
    except (OSError, RuntimeError) as err:
        raise ReleaseError(f"{path}: not a readable torch file ({err})") from err


def _field(cfg: Config, dotted: str) -> Any:
    value: Any = cfg
    for part in dotted.split("."):
        value = getattr(value, part, _MISSING)  # another family's section lacks the other's fields
    return value


def _same(a: Any, b: Any) -> bool:
    """Equal as config values: lists and tuples alike, ``true`` never equal to ``1``."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


class Differences:
    """The differences found so far (``found``) between a ``config.json`` and a config."""

    def __init__(self, json: dict[str, Any], cfg: Config) -> None:
        self.json, self.cfg, self.found = json, cfg, []

    def key(self, key: str, dotted: str, default: Any = _MISSING, convert: Any = None) -> None:
        """config.json's ``key`` (or ``default`` where its code has one) against distgan's ``dotted``."""
        value = self.json.get(key, default)
        ours = _field(self.cfg, dotted)
        if ours is _MISSING:
            return  # a field of another family (the family's own line says so)
        if value is _MISSING:
            self.found.append(f"config.json has no {key!r} (distgan's {dotted} is {ours!r})")
        elif not _same(convert(value) if convert else value, ours):
            self.found.append(f"config.json {key}={value!r} but {dotted}={ours!r}")

    def fixed(self, what: str, value: Any, dotted: str) -> None:
        ours = _field(self.cfg, dotted)
        if not _same(value, ours):
            self.found.append(f"{what} is {value!r} but {dotted}={ours!r}")


def family_mismatch(family: str, cfg: Config) -> list[str]:
    """The family line of ``release_differences``, for a format without a ``config.json`` checked
    key by key (Vocos's, DAC's, EnCodec's ``differences`` check it first)."""
    found = Differences({}, cfg)
    found.fixed("the release's generator family", family, "model.generator.family")
    return found.found


def release_differences(release_format: Any, json: dict[str, Any], cfg: Config, second_set: str | None) -> list[str]:
    """Every setting in which the release (its ``config.json``, of ``release_format``) and ``cfg``
    differ; with ``second_set`` (the release's second discriminator set, ``msd``/``mrd``/``cqtd``)
    the discriminator's too."""
    found = Differences(json, cfg)
    for key, dotted in AUDIO_KEYS:
        found.key(key, dotted)
    found.fixed("the release's generator family", release_format.family, "model.generator.family")
    release_format.generator_differences(found)
    if second_set is not None:
        release_format.discriminator_differences(found, second_set)
    return found.found
