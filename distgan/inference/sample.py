"""Clips from the noise-to-waveform family (``wavegan``): ``distgan sample``.

The generator comes from a run directory (its newest complete checkpoint) or a checkpoint
folder, its ZeRO partitions consolidated as for the vocoders (``distgan.checkpoint.weights``),
and runs in eval mode: BatchNorm normalises by the running estimates training kept, so a clip
does not depend on what else is in its batch. The noise is a pure function of ``seed``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from distgan.checkpoint.format import resolve_checkpoint
from distgan.checkpoint.weights import checkpoint_config, generator_state_dict
from distgan.config import Config
from distgan.families import family_of
from distgan.families.wavegan.models import latent_noise


def load_noise_generator(path: str | Path, ema: bool = False) -> tuple[torch.nn.Module, Config, int]:
    """The generator (eval mode), its run's config and the checkpoint's step; ``ema``: the run's
    average of its weights (``train.ema_decay``), BatchNorm's running estimates the live ones."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    checkpoint = resolve_checkpoint(path)
    cfg = checkpoint_config(checkpoint)
    spec = family_of(cfg)
    if "sample" not in spec.offers:
        raise ValueError(f"{checkpoint.path} is a {spec.name} run: its generator turns {spec.generator_input} into "
                         f"audio (distgan {' / '.join(spec.offers)}), it does not sample from noise")
    generator = spec.load_parts().build_generator(cfg.model.generator, cfg.audio)
    generator.load_state_dict(generator_state_dict(checkpoint, ema))
    return generator.eval(), cfg, checkpoint.step


@torch.inference_mode()
def sample_clips(generator: torch.nn.Module, count: int, seed: int, device: torch.device,
                 batch_size: int = 16) -> list[torch.Tensor]:
    """``count`` waveforms ``[T]`` (float32, CPU) from the noise of ``seed``."""
    noise = latent_noise(count, generator.latent_dim, ("sample", seed))
    generator = generator.to(device).eval()
    return [wave.reshape(-1).float().cpu() for chunk in noise.split(batch_size)
            for wave in generator(chunk.to(device))]
