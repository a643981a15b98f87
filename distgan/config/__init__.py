"""Typed run configuration: dataclasses read from YAML, with dotted command-line overrides.

- ``schema.py``: the dataclasses (every setting, its type and its paper default);
- ``loading.py``: YAML recipes, ``a.b=value`` overrides, type checks, renamed keys;
- ``checks.py``: cross-field checks, all before any process group starts.
"""

from distgan.config.checks import validate
from distgan.config.loading import (
    config_from_yaml_text,
    dump_config,
    family_section,
    from_dict,
    iter_fields,
    load_config,
    to_dict,
)
from distgan.config.schema import (
    DISCRIMINATOR_KINDS,
    QUALITY_METRICS,
    AudioConfig,
    BalancerConfig,
    CheckpointConfig,
    Config,
    ConfigError,
    DataConfig,
    DiscriminatorConfig,
    DistConfig,
    FamilyConfig,
    FaultConfig,
    LogConfig,
    LossConfig,
    ModelConfig,
    MultiScaleMelConfig,
    OptimConfig,
    OptimizerConfig,
    PerfConfig,
    SyntheticConfig,
    TrainConfig,
)

__all__ = [
    "DISCRIMINATOR_KINDS", "QUALITY_METRICS", "AudioConfig", "BalancerConfig", "CheckpointConfig", "Config", "ConfigError",
    "DataConfig", "DiscriminatorConfig", "DistConfig", "FaultConfig", "FamilyConfig", "LogConfig",
    "LossConfig", "ModelConfig", "MultiScaleMelConfig", "OptimConfig", "OptimizerConfig", "PerfConfig",
    "SyntheticConfig", "TrainConfig", "config_from_yaml_text", "dump_config", "family_section", "from_dict",
    "iter_fields", "load_config", "to_dict", "validate",
]
