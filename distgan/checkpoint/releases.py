"""The original HiFi-GAN and BigVGAN code's checkpoint files, found and read without running code.

Both reference trainers write a pair of pickled dicts every few thousand steps, ``g_XXXXXXXX``
(``{"generator"}``) and ``do_XXXXXXXX`` (the discriminator sets, ``optim_g``, ``optim_d``,
``steps``, ``epoch``), and read their hyperparameters from a ``config.json`` beside them. BigVGAN's
releases on the Hugging Face Hub rename the pair ``bigvgan_generator.pt`` and
``bigvgan_discriminator_optimizer.pt``. The files are read with ``torch.load(weights_only=True)``
(``files.load_file``): their tensors, numbers and optimizer dicts unpickle as plain data, and a file
holding anything else is refused before it runs.

Which code wrote a folder is told by its ``config.json``: BigVGAN's names its ``activation``.
BigVGAN stores its second discriminator set under ``"mrd"`` whichever set it is (MRD, or CQT-D
with ``use_cqtd_instead_of_mrd``); ``"cqtd"`` is read too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from distgan.checkpoint.files import load_file

CONFIG_JSON = "config.json"
BIGVGAN_G = "bigvgan_generator.pt"
BIGVGAN_DO = "bigvgan_discriminator_optimizer.pt"
STEP_FILE = re.compile(r"^(g|do)_(\d{8})$")


class ReleaseError(ValueError):
    """A release folder or file is incomplete or not what it claims; the message names the file."""


@dataclass
class Release:
    """A reference checkpoint: its generator file, its discriminator/optimizer file (None when the
    release ships none), and its ``config.json``, read."""

    family: str  # "hifigan" or "bigvgan"
    generator: Path
    discriminator: Path | None
    config_path: Path
    config: dict[str, Any]

    def describe(self) -> str:
        name = "HiFi-GAN" if self.family == "hifigan" else "BigVGAN"
        return f"{name} release {self.generator}"


def _step_files(folder: Path, prefix: str) -> dict[int, Path]:
    found = {}
    for path in folder.iterdir():
        match = STEP_FILE.match(path.name)
        if match and match.group(1) == prefix and path.is_file():
            found[int(match.group(2))] = path
    return found


def _pair_in_folder(folder: Path) -> tuple[Path, Path | None] | None:
    """The generator and discriminator files of a release folder: BigVGAN's Hub names, or the newest
    ``g_`` file and the ``do_`` file of the same step."""
    if (folder / BIGVGAN_G).is_file():
        do = folder / BIGVGAN_DO
        return folder / BIGVGAN_G, do if do.is_file() else None
    generators = _step_files(folder, "g")
    if not generators:
        return None
    newest = max(generators)
    return generators[newest], _step_files(folder, "do").get(newest)


def _pair_of_file(path: Path) -> tuple[Path, Path | None]:
    """A generator file named by the user, and its discriminator file: the same step's ``do_``,
    BigVGAN's Hub name, or for another name (HiFi-GAN's ``generator_v1``) the newest ``do_``."""
    if path.name in (BIGVGAN_G, BIGVGAN_DO):
        do = path.with_name(BIGVGAN_DO)
        return path.with_name(BIGVGAN_G), do if do.is_file() else None
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
    pair = _pair_in_folder(path) if path.is_dir() else _pair_of_file(path) if path.is_file() else None
    if pair is None:
        return None
    generator, discriminator = pair
    if not generator.is_file():
        raise ReleaseError(f"{generator}: the generator file of {path} is missing")
    config_path = generator.parent / CONFIG_JSON
    if not config_path.is_file():
        raise ReleaseError(f"{config_path} is missing: a HiFi-GAN or BigVGAN checkpoint needs the config.json it "
                           "was trained with beside it (its sample rate, hop, mels and layout are checked)")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ReleaseError(f"{config_path}: not readable JSON ({err})") from err
    if not isinstance(config, dict):
        raise ReleaseError(f"{config_path}: expected a JSON object")
    family = "bigvgan" if "activation" in config or generator.name == BIGVGAN_G else "hifigan"
    return Release(family, generator, discriminator, config_path, config)


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
    content = load_file(release.generator)
    _require(content, release.generator, ("generator",))
    return _tensors(content["generator"], release.generator, "generator")


def second_set_kind(release: Release) -> str:
    """Which distgan discriminator set the release's second set is (``msd``, ``mrd`` or ``cqtd``)."""
    if release.family == "hifigan":
        return "msd"
    if release.config.get("use_mbd_instead_of_mrd"):
        raise ReleaseError(f"{release.config_path}: use_mbd_instead_of_mrd: distgan has no multi-band "
                           "discriminator, so this release's discriminator cannot be loaded (leave "
                           "train.init_discriminator false to fine-tune its generator with a fresh one)")
    return "cqtd" if release.config.get("use_cqtd_instead_of_mrd") else "mrd"


def read_discriminator(release: Release) -> dict[str, Any]:
    """``{"mpd": state, <second set kind>: state, "optim_g": ..., "optim_d": ...}`` of the release's
    discriminator file (the optimizer entries as the reference saved them, or absent)."""
    if release.discriminator is None:
        raise ReleaseError(f"{release.generator.parent} holds no discriminator file for {release.generator.name} "
                           f"(do_XXXXXXXX of the same step, or {BIGVGAN_DO}); many releases ship the generator "
                           "only: set train.init_discriminator=false to train a fresh discriminator")
    kind = second_set_kind(release)
    content = load_file(release.discriminator)
    stored = kind
    if kind == "cqtd" and not (isinstance(content, dict) and "cqtd" in content):
        stored = "mrd"  # BigVGAN's train.py keeps the name "mrd" for whichever second set it trains
    _require(content, release.discriminator, ("mpd", stored))
    found = {"mpd": _tensors(content["mpd"], release.discriminator, "mpd"),
             kind: _tensors(content[stored], release.discriminator, stored)}
    for name in ("optim_g", "optim_d"):
        if isinstance(content.get(name), dict):
            found[name] = content[name]
    return found
