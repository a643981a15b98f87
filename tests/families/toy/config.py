"""The toy family's ``model.generator`` section: torch-free, read with the config."""

from __future__ import annotations

from dataclasses import dataclass

from distgan.config import Config, ConfigError, FamilyConfig


@dataclass
class ToyConfig(FamilyConfig):
    family: str = "toy"
    channels: int = 8
    kernel_size: int = 5
    mel_weight: float = 10.0


def check(cfg: Config) -> None:
    g = cfg.model.generator
    if g.channels < 1 or g.kernel_size % 2 == 0:
        raise ConfigError(f"model.generator: channels must be positive and kernel_size odd, got {g.channels} and "
                          f"{g.kernel_size}")
