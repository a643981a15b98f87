"""The toy family's torch side: two-layer convolutional G and D, and an objective of its own."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distgan.config import AudioConfig, Config
from distgan.families import FamilyParts


class ToyGenerator(nn.Module):
    """Log-mel ``[B, n_mels, frames]`` -> waveform ``[B, 1, frames * hop]``: a transposed convolution
    by the hop, then a convolution to one channel."""

    def __init__(self, n_mels: int, hop: int, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose1d(n_mels, channels, kernel_size=hop, stride=hop)
        self.out = nn.Conv1d(channels, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.out(F.leaky_relu(self.up(mel), 0.2)))

    def remove_weight_norm(self) -> None:
        """Inference's hook (nothing to fold here)."""


class ToyDiscriminator(nn.Module):
    """Waveform ``[B, 1, T]`` -> ``([logits [B, 1, T / 4]], [[feature map]])``, the structure the
    step's calls and distgan's GAN losses take."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, channels, kernel_size, stride=4, padding=kernel_size // 2)
        self.logit = nn.Conv1d(channels, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, wave: torch.Tensor):
        feature = F.leaky_relu(self.conv(wave), 0.2)
        return [self.logit(feature)], [[feature]]


class ToyObjective:
    """D: hinge loss; G: hinge loss through the frozen D, ``mel_weight`` x L1 between log-mels, and L1
    between waveforms (``g/wave``, a term the trainer logs because the spec declares it)."""

    def __init__(self, cfg: Config, mel_input: nn.Module, mel_loss: nn.Module, info) -> None:
        self.mel_input, self.mel_weight = mel_input, cfg.model.generator.mel_weight

    def generator_input(self, wave: torch.Tensor, step: int, rank: int, micro_batch: int) -> torch.Tensor:
        return self.mel_input(wave)

    def discriminator_terms(self, real_logits, fake_logits):
        d_real = torch.relu(1 - real_logits[0]).mean()
        d_fake = torch.relu(1 + fake_logits[0]).mean()
        return {"d/real": d_real, "d/fake": d_fake}, d_real + d_fake

    def generator_terms(self, wave: torch.Tensor, fake: torch.Tensor, frozen):
        terms = {"g/mel": (self.mel_input(fake.squeeze(1)) - self.mel_input(wave)).abs().mean(),
                 "g/wave": (fake.squeeze(1) - wave).abs().mean()}
        total = self.mel_weight * terms["g/mel"] + terms["g/wave"]
        if frozen is not None:
            with frozen() as frozen_d:
                logits, _ = frozen_d(fake)
            terms["g/adv"] = -logits[0].mean()
            total = total + terms["g/adv"]
        return terms, total


def build_generator(section, audio: AudioConfig) -> ToyGenerator:
    return ToyGenerator(audio.n_mels, audio.hop_length, section.channels, section.kernel_size)


def build_discriminator(cfg: Config) -> ToyDiscriminator:
    return ToyDiscriminator(cfg.model.generator.channels, cfg.model.generator.kernel_size)


def validator(*args, **kwargs):
    from distgan.train.validation import Validator

    return Validator(*args, **kwargs)


PARTS = FamilyParts(build_generator=build_generator, build_discriminator=build_discriminator,
                    objective=ToyObjective, validator=validator, receptive_field=lambda section: (1, 1))
