"""Load a generator from a run directory, a checkpoint, or an exported ``.safetensors`` file.

What comes back is a ``Vocoder``: the generator in eval mode with weight norm folded away, plus
the mel front end it was trained with, so a TTS pipeline can hand it mel spectrograms (or audio,
for copy-synthesis) without knowing anything about training, Accelerate or DeepSpeed.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from distgan.checkpoint.format import resolve_checkpoint
from distgan.checkpoint.weights import EXPORT_SUFFIX, checkpoint_config, generator_state_dict, read_export
from distgan.config import AudioConfig, Config, GeneratorConfig
from distgan.mel import MelSpectrogram
from distgan.models.build import Generator, build_generator


class Vocoder(nn.Module):
    """Mel ``[B, n_mels, frames]`` -> waveform ``[B, frames * hop]`` with the training-time mel."""

    def __init__(self, generator: Generator, audio: AudioConfig, generator_cfg: GeneratorConfig) -> None:
        super().__init__()
        self.generator = generator
        self.audio = audio
        self.generator_cfg = generator_cfg  # its layout (batched synthesis needs the receptive field)
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


def load_checkpoint_generator(path: str | Path) -> tuple[Generator, Config, int]:
    """Generator (weight norm still in place), its config, and the step it was saved at, from a
    run directory (its newest complete checkpoint) or a checkpoint folder."""
    checkpoint = resolve_checkpoint(path)
    cfg = checkpoint_config(checkpoint)
    if cfg.model.generator.family == "wavegan":
        raise ValueError(f"{checkpoint.path} is a wavegan run: its generator turns noise into audio, not a mel "
                         "spectrogram (distgan sample writes clips from it)")
    generator = build_generator(cfg.model.generator, cfg.audio.n_mels)
    generator.load_state_dict(generator_state_dict(checkpoint))
    return generator, cfg, checkpoint.step


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> Vocoder:
    """A ready-to-run vocoder (eval mode, weight norm removed) from any of distgan's outputs:
    a run directory (its newest complete checkpoint), a checkpoint folder or an exported
    ``.safetensors`` file. Its ``audio`` is the mel configuration the generator was trained with.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.suffix == EXPORT_SUFFIX:
        state, audio, generator_cfg = read_export(path)
        generator = build_generator(generator_cfg, audio.n_mels)
        generator.remove_weight_norm()
        generator.load_state_dict(state)
    else:
        generator, cfg, _ = load_checkpoint_generator(path)
        generator.remove_weight_norm()
        audio, generator_cfg = cfg.audio, cfg.model.generator
    return Vocoder(generator, audio, generator_cfg).to(device).eval()
