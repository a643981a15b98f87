"""Load a codec (a generator that encodes audio to discrete codes and decodes them back) for use
outside training, e.g. as the tokenizer of a speech language model.

``load_codec(path)`` reads a run directory (its newest complete checkpoint), a checkpoint folder,
an exported ``.safetensors`` file (``distgan export RUN OUT.safetensors``) or a release file of the
original project (DAC's ``.pth``, through its family's release format), and returns a ``Codec``: a
plain ``nn.Module`` in eval mode, weight norm folded, with ``encode``/``decode`` and the numbers a
pipeline needs (``sample_rate``, ``hop_length``, ``n_codebooks``, ``codebook_size``,
``bitrate``). It imports nothing of training (no ``distgan.train``, Accelerate or DeepSpeed).
A family whose spec does not offer ``encode`` (a mel vocoder) is refused with its own command.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from distgan.checkpoint.releases import find_release, read_generator
from distgan.checkpoint.weights import EXPORT_SUFFIX, read_export
from distgan.config import AudioConfig, FamilyConfig
from distgan.families import build_generator, get_family
from distgan.inference.load import load_checkpoint_generator, refuse_ema_of_export, require_offer
from distgan.models.reference_weights import load_reference_state_dict

NOT_A_CODEC = "it is not a codec"


def bitrate(n_codebooks: int, codebook_size: int, frame_rate: float) -> float:
    """Bits per second: codebooks x log2(codebook size) x code frames per second."""
    return n_codebooks * math.log2(codebook_size) * frame_rate


class Codec(nn.Module):
    """Audio ``[B, 1, T]`` (or ``[B, T]``) at ``sample_rate`` -> codes ``[B, K, ceil(T / hop)]``
    (int64, ``K`` <= ``n_codebooks``) -> audio ``[B, 1, T]``."""

    def __init__(self, codec: nn.Module, audio: AudioConfig, generator_cfg: FamilyConfig) -> None:
        super().__init__()
        self.codec = codec
        self.audio, self.generator_cfg = audio, generator_cfg
        self.sample_rate: int = codec.sample_rate
        self.hop_length: int = int(codec.hop_length)
        self.n_codebooks: int = codec.n_codebooks
        self.codebook_size: int = codec.codebook_size

    @property
    def frame_rate(self) -> float:
        """Code frames per second."""
        return self.sample_rate / self.hop_length

    def bitrate(self, n_quantizers: int | None = None) -> float:
        """Bits per second at ``n_quantizers`` codebooks (all by default): codebooks x log2(codebook
        size) x frame rate."""
        return bitrate(n_quantizers or self.n_codebooks, self.codebook_size, self.frame_rate)

    def _parameter(self) -> torch.Tensor:
        return next(self.codec.parameters())

    @torch.inference_mode()
    def encode(self, audio: torch.Tensor, n_quantizers: int | None = None) -> torch.Tensor:
        if n_quantizers is not None and not 1 <= n_quantizers <= self.n_codebooks:
            raise ValueError(f"n_quantizers={n_quantizers}: between 1 and the codec's {self.n_codebooks} codebooks")
        audio = audio.unsqueeze(1) if audio.dim() == 2 else audio
        weight = self._parameter()
        return self.codec.encode(audio.to(weight.device, weight.dtype), n_quantizers)

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor, length: int | None = None) -> torch.Tensor:
        if codes.dim() != 3 or not 1 <= codes.shape[1] <= self.n_codebooks:
            raise ValueError(f"codes of shape {tuple(codes.shape)}: expected [B, K, frames] with 1 <= K <= "
                             f"{self.n_codebooks}")
        if codes.numel() and not 0 <= int(codes.min()) <= int(codes.max()) < self.codebook_size:
            raise ValueError(f"codes outside 0..{self.codebook_size - 1} (the codec's codebook size)")
        return self.codec.decode(codes.to(self._parameter().device, torch.long), length)

    def forward(self, audio: torch.Tensor, n_quantizers: int | None = None) -> torch.Tensor:
        """Encode and decode (copy-synthesis at ``n_quantizers`` codebooks)."""
        return self.decode(self.encode(audio, n_quantizers), audio.shape[-1])


def _release_codec(path: Path) -> tuple[nn.Module, AudioConfig, FamilyConfig]:
    release = find_release(path)
    if release is None:
        raise ValueError(f"{path}: neither a distgan run directory, checkpoint folder or .safetensors export, nor a "
                         "codec's release file (DAC's .pth)")
    model_config = getattr(release.format, "model_config", None)
    if model_config is None:
        offers = get_family(release.family).offers
        raise ValueError(f"{path} is a {release.format.label} release: its generator is not a codec (distgan "
                         f"{' / '.join(offers)} is its command)")
    audio, generator_cfg = model_config(release.config)
    generator = build_generator(generator_cfg, audio)
    load_reference_state_dict(generator, read_generator(release))
    return generator, audio, generator_cfg


def load_codec(path: str | Path, device: str | torch.device = "cpu", ema: bool = False) -> Codec:
    """A ready-to-run codec (eval mode, weight norm removed) from a run directory, a checkpoint
    folder, an exported ``.safetensors`` file or a codec's release file; ``ema``: a checkpoint's
    average of the weights (``train.ema_decay``) instead of its live ones."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.is_file():
        refuse_ema_of_export(path, ema)
    if path.suffix == EXPORT_SUFFIX:
        state, audio, generator_cfg = read_export(path)
        require_offer(generator_cfg, path, ("encode",), NOT_A_CODEC)
        generator = build_generator(generator_cfg, audio)
        generator.remove_weight_norm()
        generator.load_state_dict(state)
    elif path.is_file():
        generator, audio, generator_cfg = _release_codec(path)
        generator.remove_weight_norm()
    else:
        generator, cfg, _ = load_checkpoint_generator(path, offers=("encode",), ema=ema)
        generator.remove_weight_norm()
        audio, generator_cfg = cfg.audio, cfg.model.generator
    return Codec(generator, audio, generator_cfg).to(device).eval()
