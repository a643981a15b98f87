"""Reading a config: YAML recipes, dotted overrides, type checks, renamed keys.

Everything is checked here (unknown keys, wrong types) and in ``checks.py`` (inconsistent
numbers) before any process group starts, so a typo costs seconds rather than a queued cluster
job. This module imports nothing heavier than PyYAML: ``distgan --help`` and config errors stay fast.

Renamed settings keep working for a while: the old key or value is read as the new one, with a
message on stderr naming both (``RENAMED_KEYS``, ``RENAMED_SECTIONS``, ``RENAMED_VALUES``).

``model.generator`` is typed by its ``family`` (``family_section``): the family's registered
dataclass (``distgan.families``). A field that only another family's section has is refused
naming that family; one at that family's default is dropped in silence, since configs saved
before families were declared list every family's fields at their defaults.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from distgan.config.checks import validate
from distgan.config.schema import Config, ConfigError, FamilyConfig

# Old dotted key -> new dotted key.
RENAMED_KEYS = {"log.audio_every_steps": "log.val_every_steps"}
# Old section -> new section: each key moves (the WaveGAN family's fields are its generator section).
RENAMED_SECTIONS = {"model.wavegan": "model.generator"}
# (dotted key, old value) -> new value. YAML 1.1 reads a bare ``no`` as false.
RENAMED_VALUES = {("train.precision", "no"): "fp32", ("train.precision", False): "fp32"}


def _renamed(what: str, old: Any, new: Any) -> None:
    print(f"distgan: config: {what} {old!r} is deprecated, read as {new!r}; please update the config",
          file=sys.stderr)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML recipe (or the defaults), apply ``a.b=value`` overrides, validate."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        raw = _parse_yaml(path.read_text(), str(path))
    _rename_keys(raw)
    for item in overrides:
        _apply_override(raw, item)
    cfg = from_dict(Config, raw)
    validate(cfg)
    return cfg


def _parse_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {' '.join(str(err).split())}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    return raw


def _section(raw: dict[str, Any], dotted: str, create: bool = False) -> dict[str, Any] | None:
    node: Any = raw
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        if create and not isinstance(node.get(part), dict):
            node[part] = {}
        node = node.get(part)
    return node if isinstance(node, dict) else None


def _rename_keys(raw: dict[str, Any]) -> None:
    """Move values from renamed keys and sections to their new names (in place)."""
    for old, new in RENAMED_SECTIONS.items():
        parent, _, name = old.rpartition(".")
        holder = _section(raw, parent)
        moved = holder.pop(name, None) if holder is not None else None
        if isinstance(moved, dict) and moved:
            target = _section(raw, new, create=True)
            for key, value in moved.items():
                target[key] = value  # the old section's values win over defaults saved beside them
            if not all(_foreign_default(target, key) for key in moved):
                _renamed("section", old, new)  # not a saved config's defaults of another family: say so
    for old, new in RENAMED_KEYS.items():
        old_section, _, old_name = old.rpartition(".")
        section = raw.get(old_section)
        if isinstance(section, dict) and old_name in section:
            _renamed("key", old, new)
            new_section, _, new_name = new.rpartition(".")
            raw.setdefault(new_section, {}).setdefault(new_name, section.pop(old_name))


def _apply_override(raw: dict[str, Any], item: str) -> None:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r} is not of the form section.key=value")
    key = key.strip()
    if key in RENAMED_KEYS:
        _renamed("key", key, RENAMED_KEYS[key])
        key = RENAMED_KEYS[key]
    for old, new in RENAMED_SECTIONS.items():
        if key.startswith(old + "."):
            _renamed("key", key, new + key[len(old):])
            key = new + key[len(old):]
    parts = key.split(".")
    _check_path(Config, parts)
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(f"override {item!r}: the value is not valid YAML ({' '.join(str(err).split())})") from err


def _check_path(cls: type, parts: list[str], prefix: str = "") -> None:
    """Fail on an unknown dotted key before anything else is parsed."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    head = parts[0]
    if head not in names:
        raise ConfigError(_unknown_key(prefix + head, head, names))
    hint = _resolved_hints(cls)[head]
    if len(parts) > 1:
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            raise ConfigError(f"{prefix}{head} is a value, not a section (got {'.'.join(parts)})")
        if _is_family_section(hint):
            return  # its fields depend on its family, which a later override may set: from_dict checks them
        _check_path(hint, parts[1:], prefix + head + ".")


def _unknown_key(full: str, name: str, names: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.5)
    section = full.rpartition(".")[0]
    valid = f"{section}.{close[0]}" if section and close else (close[0] if close else None)
    return f"unknown config key {full!r}" + (f"; did you mean {valid!r}?" if valid else "")


def _resolved_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type, data: dict[str, Any] | None, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from plain data, checking every key and type."""
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = _resolved_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise ConfigError(_unknown_key(prefix + str(key), str(key), names))
    kwargs = {}
    for name in names:
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], prefix + name)
    return cls(**kwargs)


def _is_family_section(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, FamilyConfig)


def _default_of(cls: type, name: str) -> Any:
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _owners(name: str) -> list[type]:
    """The registered families' section dataclasses that have a field ``name``."""
    from distgan.families import family_names, get_family

    sections = [get_family(family).config for family in family_names()]
    return [cls for cls in sections if name in {f.name for f in dataclasses.fields(cls)}]


def _foreign_default(data: dict[str, Any], name: str) -> bool:
    """Whether ``data[name]``, in a family section of ``data["family"]`` that lacks the field, is
    another family's default for it (what a config saved before families were declared holds)."""
    from distgan.families import DEFAULT_FAMILY, family_names, get_family

    family = data.get("family", DEFAULT_FAMILY)
    if family not in family_names() or name in {f.name for f in dataclasses.fields(get_family(family).config)}:
        return False
    return any(data[name] == _default_of(cls, name) for cls in _owners(name))


def family_section(data: dict[str, Any] | None, key: str = "model.generator") -> FamilyConfig:
    """A ``model.generator`` section as its family's dataclass (``data["family"]``, default
    ``DEFAULT_FAMILY``), every field checked; another family's field is refused by its name and
    that family (``FamilySpec.refusal`` words it), or dropped when at that family's default."""
    from distgan.families import DEFAULT_FAMILY, get_family

    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{key}: expected a mapping, got {data!r}")
    data = dict(data or {})
    spec = get_family(data.get("family", DEFAULT_FAMILY), f"{key}.family")
    own = {f.name for f in dataclasses.fields(spec.config)}
    refused: dict[str, list[str]] = {}
    for name in [name for name in data if name not in own]:
        owners = _owners(str(name))
        if not owners:
            raise ConfigError(_unknown_key(f"{key}.{name}", str(name), own))
        if _foreign_default(data, name):
            del data[name]  # a saved config's default of another family: it never did anything
            continue
        refused[f"{key}.{name}"] = [_default_of(cls, "family") for cls in owners]
    if refused:
        keys = list(refused)
        families = ", ".join(dict.fromkeys(f for fs in refused.values() for f in fs))
        raise ConfigError(spec.refusal(keys) if spec.refusal else
                          f"{', '.join(keys)} only applies to {key}.family: {families} "
                          f"(this generator is {spec.name})")
    return from_dict(spec.config, data, key + ".")


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if _is_family_section(hint):
        return family_section(value, key)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_dict(hint, value, key + ".")
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} matches none of {hint}")
    if origin is Literal:
        choices = typing.get_args(hint)
        renamed = next((new for (name, old), new in RENAMED_VALUES.items()
                        if name == key and old == value and type(old) is type(value)), None)
        if renamed is not None:
            _renamed(f"{key} value", value, renamed)
            value = renamed
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value) if str(value) in choices else value
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {list(choices)}")
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        return _number(value, key)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {hint}")  # pragma: no cover - a bug in this file


# A number as people type it, which YAML 1.1 (PyYAML) reads as a string: 1e-4, 2E-4, 1e+3 (YAML
# wants a dot, 1.0e-4), and inf. Underscores and nan stay refused.
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|[-+]?(\.?inf|infinity)", re.IGNORECASE)
# Fields where "no limit" is a meaningful value: inf reads as the field's own "off" (so nothing
# downstream sees an infinity, and the saved config.yaml says what it means).
INFINITY_MEANS_OFF: dict[str, float | None] = {
    "optim.generator.grad_clip": None,
    "optim.discriminator.grad_clip": None,
    "faults.watchdog_minutes": 0.0,
    "log.val_every_minutes": 0.0,
}


def _number(value: Any, key: str) -> float | None:
    """A float field's value: a YAML number, or a string holding one (``1e-4``); finite, except
    ``inf`` where the field reads it as "off" (``INFINITY_MEANS_OFF``)."""
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = float(re.sub(r"\.(?=inf)", "", value.strip(), flags=re.IGNORECASE))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if value == math.inf and key in INFINITY_MEANS_OFF:
        return INFINITY_MEANS_OFF[key]
    if not math.isfinite(value):
        allowed = f" (inf only for {', '.join(INFINITY_MEANS_OFF)})" if value == math.inf else ""
        raise ConfigError(f"{key}: expected a finite number, got {value!r}{allowed}")
    return float(value)


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def config_from_yaml_text(text: str) -> Config:
    """Rebuild a saved (resolved) config, e.g. from a checkpoint or an exported model."""
    raw = _parse_yaml(text, "saved config")
    _rename_keys(raw)
    cfg = from_dict(Config, raw)
    validate(cfg)
    return cfg


def iter_fields(cls: type = Config, prefix: str = "") -> typing.Iterator[tuple[str, Any, Any]]:
    """Yield ``(dotted_name, type, default)`` for every leaf field; used for the config reference (docs/config.md).
    A family section yields the fields of every registered family (each once, at its first
    family's default)."""
    hints = _resolved_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if _is_family_section(hint):
            from distgan.families import family_names, get_family

            seen: set[str] = set()
            for name in family_names():
                for item in iter_fields(get_family(name).config, prefix + f.name + "."):
                    if item[0] not in seen:
                        seen.add(item[0])
                        yield item
        elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
            yield from iter_fields(hint, prefix + f.name + ".")
        else:
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            yield prefix + f.name, hint, default
