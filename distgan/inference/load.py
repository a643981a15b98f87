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
from distgan.config import AudioConfig, Config, FamilyConfig
from distgan.families import build_generator, front_end, get_family


class Vocoder(nn.Module):
    """Mel ``[B, n_mels, frames]`` -> waveform ``[B, frames * hop]`` with the training-time mel
    (``[B, (frames - 1) * hop]`` for Vocos's ``center`` head: a clip of ``n * hop`` samples has
    ``n + 1`` frames and comes back at its own length)."""

    def __init__(self, generator: nn.Module, audio: AudioConfig, generator_cfg: FamilyConfig) -> None:
        super().__init__()
        self.generator = generator
        self.audio = audio
        self.generator_cfg = generator_cfg  # its family section (batched synthesis needs the receptive field)
        self.mel = front_end(generator_cfg, audio)  # the family's: what the generator was trained on

    def receptive_field(self) -> tuple[int, int]:
        """Input frames ``(before, after)`` that one output sample reads (its family's answer)."""
        return get_family(self.generator_cfg.family).load_parts().receptive_field(self.generator_cfg)

    @torch.inference_mode()
    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.generator(mel.to(next(self.generator.parameters()).dtype)).squeeze(1)

    @torch.inference_mode()
    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """Log-mel of a waveform ``[B, T]``, as the model saw it in training."""
        return self.mel(wave)

    def resynthesize(self, wave: torch.Tensor) -> torch.Tensor:
        return self(self.encode(wave))


def require_offer(section: FamilyConfig, where: Path, offers: tuple[str, ...], not_this: str) -> None:
    """Refuse a family whose spec offers none of ``offers`` (``FamilySpec.offers``), naming its own
    commands; ``not_this`` says what its generator is not given (a mel spectrogram, ...)."""
    spec = get_family(section.family)
    if not set(offers) & set(spec.offers):
        raise ValueError(f"{where} is a {spec.name} run: its generator turns {spec.generator_input} into audio, "
                         f"{not_this} (distgan {' / '.join(spec.offers)} is its command)")


def refuse_ema_of_export(path: Path, ema: bool) -> None:
    """An export holds one set of weights (the average when it was exported with ``--ema``)."""
    if ema:
        raise ValueError(f"{path} is an export: it holds one set of weights, --ema reads a run directory or "
                         "checkpoint folder (export that with --ema for its average)")


def _mel_vocoder(section: FamilyConfig, where: Path) -> None:
    """Refuse a family whose generator does not turn mel spectrograms into audio."""
    require_offer(section, where, ("synthesize",), "not a mel spectrogram")


def load_checkpoint_generator(path: str | Path, offers: tuple[str, ...] = ("synthesize",), ema: bool = False
                              ) -> tuple[nn.Module, Config, int]:
    """Generator (weight norm still in place), its config, and the step it was saved at, from a
    run directory (its newest complete checkpoint) or a checkpoint folder; refused unless its
    family offers one of ``offers`` (a mel vocoder's ``synthesize`` by default). With ``ema``, the
    average of its weights the run kept (``train.ema_decay``; ZeRO-3's partitions gathered)."""
    checkpoint = resolve_checkpoint(path)
    cfg = checkpoint_config(checkpoint)
    require_offer(cfg.model.generator, checkpoint.path, offers, f"not what distgan {' / '.join(offers)} reads")
    generator = build_generator(cfg.model.generator, cfg.audio)
    generator.load_state_dict(generator_state_dict(checkpoint, ema))
    return generator, cfg, checkpoint.step


def load_generator(path: str | Path, device: str | torch.device = "cpu", ema: bool = False) -> Vocoder:
    """A ready-to-run vocoder (eval mode, weight norm removed) from any of distgan's outputs:
    a run directory (its newest complete checkpoint), a checkpoint folder or an exported
    ``.safetensors`` file. Its ``audio`` is the mel configuration the generator was trained with.
    ``ema``: a checkpoint's average of the weights instead of its live ones (refused for an export, which holds one set).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.suffix == EXPORT_SUFFIX:
        refuse_ema_of_export(path, ema)
        state, audio, generator_cfg = read_export(path)
        _mel_vocoder(generator_cfg, path)
        generator = build_generator(generator_cfg, audio)
        generator.remove_weight_norm()
        generator.load_state_dict(state)
    else:
        generator, cfg, _ = load_checkpoint_generator(path, ema=ema)
        generator.remove_weight_norm()
        audio, generator_cfg = cfg.audio, cfg.model.generator
    return Vocoder(generator, audio, generator_cfg).to(device).eval()
