"""The original projects' release formats by name: file names, ``config.json``, and which models they hold.

``distgan export --format NAME`` writes what the original training code writes, so its inference
scripts, its ``train.py`` (to fine-tune) and toolkits built on it load the result. Each format is
its family's (``FamilySpec.release_formats``: ``distgan/families/hifigan/release.py`` for
jik876/hifi-gan, ``distgan/families/bigvgan/release.py`` for NVIDIA/BigVGAN); this module finds it
by name and refuses a run of another family. A model the format cannot express is refused with
the field, its value and what the format needs.
"""

from __future__ import annotations

from typing import Any

from distgan.config import Config, DiscriminatorConfig
from distgan.families import get_family, release_format, release_format_names

__all__ = ["discriminator_keys", "discriminator_problems", "formats", "generator_problem", "release_config",
           "release_files"]


def formats() -> list[str]:
    return release_format_names()


def release_files(fmt: str, step: int) -> tuple[str, str]:
    """The generator's and the discriminator-and-optimizer file's names."""
    return release_format(fmt)[1].files(step)


def discriminator_keys(fmt: str, cfg: DiscriminatorConfig) -> list[tuple[str, str]]:
    """``(distgan kind, key in the file)`` in the order the reference's D optimizer holds them."""
    return release_format(fmt)[1].discriminator_keys(cfg)


def generator_problem(fmt: str, cfg: Config) -> str | None:
    """Why the format cannot hold this generator, or None."""
    spec, release = release_format(fmt)
    family = cfg.model.generator.family
    if family != spec.name:
        own = list(get_family(family).release_formats)
        return (f"model.generator.family={family}: {release.label}'s code has no {family} generator"
                + (f" (use --format {own[0]})" if own else ""))
    return release.generator_problem(cfg)


def discriminator_problems(fmt: str, cfg: DiscriminatorConfig) -> list[str]:
    """Why the format cannot hold these discriminators (empty: it can)."""
    return release_format(fmt)[1].discriminator_problems(cfg)


def release_config(fmt: str, cfg: Config, world_size: int) -> dict[str, Any]:
    """``config.json`` for the reference code (batch size over all ``world_size`` ranks)."""
    return release_format(fmt)[1].config_json(cfg, world_size)
