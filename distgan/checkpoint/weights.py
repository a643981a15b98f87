"""A generator's weights out of any of distgan's outputs (a checkpoint's discriminators too), and
the exported file's format.

- a checkpoint (``format.py``): fp32 weights from a DDP ``state.pt``, or consolidated from the
  ZeRO partitions of a DeepSpeed run (DeepSpeed's ``zero_to_fp32``, imported only then, its
  loads held to weights only: ``files.py``);
- an export: a ``.safetensors`` file of plain fp32 generator weights (weight norm folded away)
  whose metadata carries the audio and generator config as JSON under ``EXPORT_CONFIG_KEY``, so
  loading needs nothing but torch, safetensors and distgan's model code.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch

from distgan.checkpoint.ema import has_average, no_average, with_average
from distgan.checkpoint.files import deepspeed_records, load_file, weights_only_loads
from distgan.checkpoint.format import DDP_STATE, ENGINES, ZERO_TAG, Checkpoint
from distgan.config import AudioConfig, Config, FamilyConfig, config_from_yaml_text, family_section, from_dict

EXPORT_CONFIG_KEY = "distgan_config"
EXPORT_SUFFIX = ".safetensors"


def checkpoint_config(checkpoint: Checkpoint) -> Config:
    """The resolved config the run saved with this checkpoint."""
    return config_from_yaml_text(checkpoint.config_text())


def generator_state_dict(checkpoint: Checkpoint, ema: bool = False) -> dict[str, torch.Tensor]:
    """Full fp32 generator weights (weight norm still in place), consolidating ZeRO partitions;
    with ``ema``, the parameters are the run's average of them (``train.ema_decay``; refused,
    naming the checkpoint and the setting, where it kept none), the buffers the live ones."""
    if ema and not has_average(checkpoint):
        raise no_average(checkpoint)  # before any consolidation
    state = engine_state_dict(checkpoint, ENGINES[0])
    return with_average(state, checkpoint) if ema else state


def ddp_engine_state(checkpoint: Checkpoint, engine: str) -> dict | None:
    """An engine's whole state (``model``, ``optimizer``, ``scaler``) when one process or DDP wrote
    it; None when DeepSpeed did (its optimizer state is partitioned over the ranks)."""
    path = checkpoint.path / engine / DDP_STATE
    return load_file(path) if path.is_file() else None


def engine_state_dict(checkpoint: Checkpoint, engine: str) -> dict[str, torch.Tensor]:
    """Full fp32 weights of ``engine`` (one of ``ENGINES``), consolidating ZeRO partitions."""
    folder = checkpoint.path / engine
    if (folder / DDP_STATE).is_file():
        state = load_file(folder / DDP_STATE)["model"]
    else:
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

        with weights_only_loads(deepspeed_records()):
            state = get_fp32_state_dict_from_zero_checkpoint(str(folder), tag=ZERO_TAG)
    return {key: value.float() for key, value in state.items()}


def write_export(path: Path, state: dict[str, torch.Tensor], audio: AudioConfig, generator: FamilyConfig,
                 step: int) -> dict:
    """Write ``state`` (fp32, contiguous) with its config in the metadata; returns that config."""
    from safetensors.torch import save_file

    model_cfg = {"audio": dataclasses.asdict(audio), "generator": dataclasses.asdict(generator)}
    tensors = {key: value.detach().float().contiguous() for key, value in state.items()}
    save_file(tensors, str(path), metadata={EXPORT_CONFIG_KEY: json.dumps(model_cfg), "step": str(step)})
    # safetensors writes a private temporary file (mode 0600) and renames it into place; an export
    # is meant to be shared like the .yaml beside it, so it gets the mode any new file gets here.
    path.chmod(0o666 & ~current_umask())
    return model_cfg


def current_umask() -> int:
    """This process's umask. Linux reports it in /proc; elsewhere it is read by setting it and
    putting it back (a moment in which another thread's new file would get 0o022)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read_export(path: Path) -> tuple[dict[str, torch.Tensor], AudioConfig, FamilyConfig]:
    """Weights, audio config and generator config of an exported file."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
    if EXPORT_CONFIG_KEY not in metadata:
        raise ValueError(f"{path}: not a distgan export (no {EXPORT_CONFIG_KEY} metadata)")
    model_cfg = json.loads(metadata[EXPORT_CONFIG_KEY])
    audio = from_dict(AudioConfig, model_cfg["audio"], "audio.")
    generator_cfg = family_section(model_cfg["generator"], "generator")
    return load_file(str(path)), audio, generator_cfg
