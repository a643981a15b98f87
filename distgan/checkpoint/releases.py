"""The original projects' checkpoint files (HiFi-GAN's and BigVGAN's), found and read without running code.

Both reference trainers write a pair of pickled dicts every few thousand steps, ``g_XXXXXXXX``
(``{"generator"}``) and ``do_XXXXXXXX`` (the discriminator sets, ``optim_g``, ``optim_d``,
``steps``, ``epoch``), and read their hyperparameters from a ``config.json`` beside them. BigVGAN's
releases on the Hugging Face Hub rename the pair ``bigvgan_generator.pt`` and
``bigvgan_discriminator_optimizer.pt``. The files are read with ``torch.load(weights_only=True)``
(``files.load_file``): their tensors, numbers and optimizer dicts unpickle as plain data, and a file
holding anything else is refused before it runs.

Which code wrote a folder, and what its files are named and hold, each family's release format
says (``distgan/families/*/release.py``, found through the registry): the first format whose
``claims`` accepts the folder's ``config.json``, else the first registered one (HiFi-GAN's). A
format whose hyperparameters travel inside its weights file (DAC's ``.pth``: ``config_file`` None)
finds that file itself (``own_file``) and reads them from it (``read_config``), before any of this.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from distgan.checkpoint.files import load_file
from distgan.checkpoint.release_config import ReleaseError

__all__ = ["Release", "ReleaseError", "find_release", "read_discriminator", "read_generator", "second_set_kind"]

CONFIG_JSON = "config.json"
STEP_FILE = re.compile(r"^(g|do)_(\d{8})$")


def _formats() -> list[Any]:
    from distgan.families import release_format, release_format_names

    return [release_format(name)[1] for name in release_format_names()]


def _fixed_files() -> list[tuple[str, str]]:
    return [fmt.fixed_files for fmt in _formats() if fmt.fixed_files]


@dataclass
class Release:
    """A reference checkpoint: its generator file, its discriminator/optimizer file (None when the
    release ships none), and its ``config.json``, read (or the weights file and the hyperparameters
    it holds, for DAC's)."""

    format: Any  # its ReleaseFormat (distgan/families/*/release.py)
    generator: Path
    discriminator: Path | None
    config_path: Path
    config: dict[str, Any]

    @property
    def family(self) -> str:
        return self.format.family

    def describe(self) -> str:
        return f"{self.format.label} release {self.generator}"


def _step_files(folder: Path, prefix: str) -> dict[int, Path]:
    found = {}
    for path in folder.iterdir():
        match = STEP_FILE.match(path.name)
        if match and match.group(1) == prefix and path.is_file():
            found[int(match.group(2))] = path
    return found


def _pair_in_folder(folder: Path) -> tuple[Path, Path | None] | None:
    """The generator and discriminator files of a release folder: a format's own names (BigVGAN's
    Hub files), or the newest ``g_`` file and the ``do_`` file of the same step."""
    for g_name, do_name in _fixed_files():
        if (folder / g_name).is_file():
            do = folder / do_name if do_name else None
            return folder / g_name, do if do is not None and do.is_file() else None
    generators = _step_files(folder, "g")
    if not generators:
        return None
    newest = max(generators)
    return generators[newest], _step_files(folder, "do").get(newest)


def _pair_of_file(path: Path) -> tuple[Path, Path | None]:
    """A generator file named by the user, and its discriminator file: the same step's ``do_``,
    a format's own name (BigVGAN's Hub files), or for another name (HiFi-GAN's ``generator_v1``)
    the newest ``do_``."""
    for g_name, do_name in _fixed_files():
        if path.name in (g_name, do_name):
            do = path.with_name(do_name) if do_name else None
            return path.with_name(g_name), do if do is not None and do.is_file() else None
    match = STEP_FILE.match(path.name)
    if match:
        step = match.group(2)
        do = path.with_name(f"do_{step}")
        return path.with_name(f"g_{step}"), do if do.is_file() else None
    discriminators = _step_files(path.parent, "do")
    return path, discriminators[max(discriminators)] if discriminators else None


def find_release(path: Path) -> Release | None:
    """The release at ``path`` (a folder, or one of its files), or None when it holds none.

    Raises ``ReleaseError`` when the generator file or ``config.json`` is missing or unreadable.
    """
    path = Path(path)
    for fmt in _formats():
        own = fmt.own_file(path) if fmt.config_file is None and path.exists() else None
        if own is not None:
            return Release(fmt, own, None, own, fmt.read_config(own))
    pair = _pair_in_folder(path) if path.is_dir() else _pair_of_file(path) if path.is_file() else None
    if pair is None:
        return None
    generator, discriminator = pair
    if not generator.is_file():
        raise ReleaseError(f"{generator}: the generator file of {path} is missing")
    formats = _formats()
    # A format whose own file this is (BigVGAN's, Vocos's) names its config file too.
    owner = next((f for f in formats if f.fixed_files and f.fixed_files[0] == generator.name), None)
    config_path = generator.parent / (owner.config_file if owner else CONFIG_JSON)
    if not config_path.is_file():
        raise ReleaseError(f"{config_path} is missing: a HiFi-GAN, BigVGAN or Vocos checkpoint needs the "
                           f"{config_path.name} it was trained with beside it (its sample rate, hop, mels and "
                           "layout are checked)")
    config = _read_config(config_path)
    fmt = owner or next((f for f in formats if f.claims(config, generator)), formats[0])
    return Release(fmt, generator, discriminator, config_path, config)


def _read_config(path: Path) -> dict[str, Any]:
    """A release's ``config.json``, or ``config.yaml`` (Vocos), read as data."""
    try:
        config = yaml.safe_load(path.read_text()) if path.suffix in (".yaml", ".yml") else json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, yaml.YAMLError) as err:
        raise ReleaseError(f"{path}: not readable {path.suffix[1:].upper()} ({err})") from err
    if not isinstance(config, dict):
        raise ReleaseError(f"{path}: expected a mapping of settings")
    return config


def _tensors(value: Any, path: Path, key: str) -> dict[str, torch.Tensor]:
    if not isinstance(value, dict) or not all(isinstance(v, torch.Tensor) for v in value.values()):
        raise ReleaseError(f"{path}: {key!r} is not a state dict of tensors")
    return value


def _require(content: Any, path: Path, required: tuple[str, ...]) -> None:
    missing = [key for key in required if not isinstance(content, dict) or key not in content]
    if missing:
        found = sorted(content) if isinstance(content, dict) else type(content).__name__
        raise ReleaseError(f"{path}: no {', '.join(repr(k) for k in missing)} entry (it holds {found})")


def read_generator(release: Release) -> dict[str, torch.Tensor]:
    """The generator's state dict, under the reference's key names."""
    content, key = load_file(release.generator), release.format.generator_key
    if key is None:  # the file is the state dict (Vocos's pytorch_model.bin)
        return _tensors(content, release.generator, "state dict")
    _require(content, release.generator, (key,))
    return _tensors(content[key], release.generator, key)


def second_set_kind(release: Release) -> str:
    """Which distgan discriminator set the release's second set is (``msd``, ``mrd`` or ``cqtd``)."""
    return release.format.second_set_kind(release.config, release.config_path)


def read_discriminator(release: Release) -> dict[str, Any]:
    """``{"mpd": state, <second set kind>: state, "optim_g": ..., "optim_d": ...}`` of the release's
    discriminator file (the optimizer entries as the reference saved them, or absent)."""
    if release.discriminator is None:
        raise ReleaseError(f"{release.generator.parent} holds no discriminator file for {release.generator.name} "
                           f"(do_XXXXXXXX of the same step, or {', '.join(do for _, do in _fixed_files() if do)}); "
                           "many releases ship the generator "
                           "only: set train.init_discriminator=false to train a fresh discriminator")
    kind = second_set_kind(release)
    content = load_file(release.discriminator)
    stored = release.format.stored_second_set(kind, content if isinstance(content, dict) else {})
    _require(content, release.discriminator, ("mpd", stored))
    found = {"mpd": _tensors(content["mpd"], release.discriminator, "mpd"),
             kind: _tensors(content[stored], release.discriminator, stored)}
    for name in ("optim_g", "optim_d"):
        if isinstance(content.get(name), dict):
            found[name] = content[name]
    return found
