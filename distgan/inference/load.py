"""Load a generator from a run directory, a checkpoint, or an exported ``.safetensors`` file.

What comes back is a ``Vocoder``: the generator in eval mode with weight norm folded away, plus
the mel front end it was trained with, so a TTS pipeline can hand it mel spectrograms (or audio,
for copy-synthesis) without knowing anything about training, Accelerate or DeepSpeed.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from distgan.config import AudioConfig, Config, GeneratorConfig, config_from_yaml_text, from_dict
from distgan.mel import MelSpectrogram
from distgan.models.generator import HiFiGANGenerator

CONFIG_METADATA_KEY = "distgan_config"


class Vocoder(nn.Module):
    """Mel ``[B, n_mels, frames]`` -> waveform ``[B, frames * hop]`` with the training-time mel."""

    def __init__(self, generator: HiFiGANGenerator, audio: AudioConfig) -> None:
        super().__init__()
        self.generator = generator
        self.audio = audio
        self.mel = MelSpectrogram(audio)

    @torch.inference_mode()
    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.generator(mel.to(next(self.generator.parameters()).dtype)).squeeze(1)

    @torch.inference_mode()
    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """Log-mel of a waveform ``[B, T]``, as the model saw it in training."""
        return self.mel(wave)

    def resynthesize(self, wave: torch.Tensor) -> torch.Tensor:
        return self(self.encode(wave))


def _latest(path: Path) -> Path:
    from distgan.train.checkpoint import latest_checkpoint

    checkpoint = latest_checkpoint(path)
    if checkpoint is None:
        raise FileNotFoundError(f"{path}: no complete checkpoint in this run directory")
    return checkpoint.path


def checkpoint_folder(path: str | Path) -> Path:
    """A checkpoint folder from a run directory (its newest complete one) or a checkpoint path."""
    path = Path(path)
    if (path / "checkpoints").is_dir():
        return _latest(path)
    if (path / "generator").is_dir() and (path / "config.yaml").is_file():
        from distgan.train.checkpoint import why_incomplete

        reason = why_incomplete(path)
        if reason:
            raise ValueError(f"{path}: incomplete checkpoint ({reason})")
        return path
    raise FileNotFoundError(f"{path}: neither a run directory, a checkpoint nor a .safetensors file")


def generator_state_dict(checkpoint: Path) -> dict[str, torch.Tensor]:
    """Full fp32 generator weights from a checkpoint, consolidating ZeRO partitions if needed."""
    folder = checkpoint / "generator"
    if (folder / "state.pt").is_file():
        state = torch.load(folder / "state.pt", map_location="cpu", weights_only=False)["model"]
    else:
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

        state = get_fp32_state_dict_from_zero_checkpoint(str(folder), tag="zero")
    return {key: value.float() for key, value in state.items()}


def load_checkpoint_generator(path: str | Path) -> tuple[HiFiGANGenerator, Config, int]:
    """Generator (weight norm still in place), its config, and the step it was saved at."""
    folder = checkpoint_folder(path)
    cfg = config_from_yaml_text((folder / "config.yaml").read_text())
    generator = HiFiGANGenerator(cfg.model.generator, n_mels=cfg.audio.n_mels)
    generator.load_state_dict(generator_state_dict(folder))
    step = json.loads((folder / "COMPLETE").read_text())["step"]
    return generator, cfg, step


def read_exported(path: Path) -> tuple[dict[str, torch.Tensor], AudioConfig, GeneratorConfig]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
    if CONFIG_METADATA_KEY not in metadata:
        raise ValueError(f"{path}: not a distgan export (no {CONFIG_METADATA_KEY} metadata)")
    model_cfg = json.loads(metadata[CONFIG_METADATA_KEY])
    audio = from_dict(AudioConfig, model_cfg["audio"], "audio.")
    generator_cfg = from_dict(GeneratorConfig, model_cfg["generator"], "generator.")
    return load_file(str(path)), audio, generator_cfg


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> Vocoder:
    """A ready-to-run vocoder (eval mode, weight norm removed) from any of distgan's outputs:
    a run directory (its newest complete checkpoint), a checkpoint folder or an exported
    ``.safetensors`` file. Its ``audio`` is the mel configuration the generator was trained with.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.suffix == ".safetensors":
        state, audio, generator_cfg = read_exported(path)
        generator = HiFiGANGenerator(generator_cfg, n_mels=audio.n_mels)
        generator.remove_weight_norm()
        generator.load_state_dict(state)
    else:
        generator, cfg, _ = load_checkpoint_generator(path)
        generator.remove_weight_norm()
        audio = cfg.audio
    return Vocoder(generator, audio).to(device).eval()
