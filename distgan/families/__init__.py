"""The registry of model families: each registers its ``FamilySpec`` once, the config names it.

``model.generator.family`` names the family (the key of the recipes and checkpoints written
before families were declared; it reads as "the generator's family" and keeps every file valid).
Built in: ``hifigan``, ``bigvgan``, ``wavegan``, ``vocos``, ``dac``, ``encodec`` (one folder each beside this file). More come from

- the environment: ``DISTGAN_FAMILIES=pkg.module,other.module`` (each module's ``SPEC``), read
  in every process, so ranks started by ``torchrun`` or ``accelerate launch`` see them too;
- installed packages: an entry point in the group ``distgan.families`` naming a module.

Neither comes from a config file: a recipe or checkpoint a stranger sends names a family but
never makes distgan import anything. Everything else asks the spec (``family_of(cfg)``), never
compares a family's name (``tests/test_layout.py``). Adding a family: ``docs/families.md``.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from distgan.families.spec import OPTIONAL_SETTINGS, VOCODER_SETTINGS, FamilyParts, FamilySpec

if TYPE_CHECKING:
    from distgan.config import AudioConfig, Config, ModelConfig
    from distgan.families.release import ReleaseFormat

__all__ = ["DEFAULT_FAMILY", "OPTIONAL_SETTINGS", "VOCODER_SETTINGS", "FamilyParts", "FamilySpec", "build_generator",
           "build_models", "family_names", "family_of", "front_end", "get_family", "register", "release_format",
           "release_format_names"]

DEFAULT_FAMILY = "hifigan"  # what a config without model.generator.family trains (HiFi-GAN V1's defaults)
BUILT_IN = ("distgan.families.hifigan", "distgan.families.bigvgan", "distgan.families.wavegan",
            "distgan.families.vocos", "distgan.families.dac", "distgan.families.encodec")
PLUGINS_ENV = "DISTGAN_FAMILIES"
ENTRY_POINT_GROUP = "distgan.families"

_REGISTRY: dict[str, FamilySpec] = {}
_loaded = False


def register(spec: FamilySpec) -> FamilySpec:
    """Add ``spec``; registering the same spec again is a no-op, another one under its name is an error."""
    if spec.config().family != spec.name:
        raise ValueError(f"model family {spec.name!r}: its section {spec.config.__name__} names the family "
                         f"{spec.config().family!r} by default (set family: str = {spec.name!r})")
    known = _REGISTRY.get(spec.name)
    if known is not None and known is not spec:
        raise ValueError(f"model family {spec.name!r} is registered twice ({known.parts} and {spec.parts})")
    _REGISTRY[spec.name] = spec
    return spec


def _register_module(name: str, source: str) -> None:
    try:
        module = importlib.import_module(name)
    except ImportError as err:
        raise ImportError(f"{source}: cannot import model family module {name!r}: {err}") from err
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, FamilySpec):
        raise TypeError(f"{source}: module {name!r} has no SPEC of type distgan.families.FamilySpec")
    register(spec)


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in BUILT_IN:
        _register_module(name, "distgan")
    for name in filter(None, (part.strip() for part in os.environ.get(PLUGINS_ENV, "").split(","))):
        _register_module(name, PLUGINS_ENV)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        _register_module(point.value, f"entry point {point.name!r} ({ENTRY_POINT_GROUP})")


def family_names() -> list[str]:
    _load()
    return list(_REGISTRY)


def get_family(name: Any, key: str = "model.generator.family") -> FamilySpec:
    """The spec registered as ``name``; a ``ConfigError`` naming ``key`` and the choices otherwise."""
    _load()
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name]
    from distgan.config.schema import ConfigError

    raise ConfigError(f"{key}: {name!r} is not one of {list(_REGISTRY)} (a family of your own is registered "
                      f"through {PLUGINS_ENV}=module or an entry point in the group {ENTRY_POINT_GROUP!r})")


def family_of(cfg: Config | ModelConfig) -> FamilySpec:
    """The spec of a run's (or a model config's) family."""
    model = getattr(cfg, "model", cfg)
    return get_family(model.generator.family)


def release_format_names() -> list[str]:
    _load()
    return [name for spec in _REGISTRY.values() for name in spec.release_formats]


def release_format(name: str) -> tuple[FamilySpec, ReleaseFormat]:
    """The family that reads and writes the release format ``name``, and the format."""
    _load()
    for spec in _REGISTRY.values():
        if name in spec.release_formats:
            return spec, spec.release_formats[name]
    raise ValueError(f"unknown release format {name!r} (one of {', '.join(release_format_names())})")


def build_generator(section: Any, audio: AudioConfig) -> Any:
    """A fresh generator of ``section``'s family (``section``: a ``model.generator`` config)."""
    return get_family(section.family).load_parts().build_generator(section, audio)


def front_end(section: Any, audio: AudioConfig) -> Any:
    """The mel front end the generator of ``section``'s family takes (``FamilyParts.front_end``)."""
    make = get_family(section.family).load_parts().front_end
    if make is None:
        from distgan.losses.mel import MelSpectrogram

        return MelSpectrogram(audio)
    return make(section, audio)


def build_models(cfg: Config) -> tuple[Any, Any]:
    """The (generator, discriminator) pair a run's config describes, freshly initialised."""
    parts = family_of(cfg).load_parts()
    return parts.build_generator(cfg.model.generator, cfg.audio), parts.build_discriminator(cfg)
