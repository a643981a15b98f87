"""The noise-to-waveform GAN family (WaveGAN, Donahue et al. 2019): a generator from a random vector
and a discriminator that gives one real/fake logit per clip, both with BatchNorm.

Shapes: ``WaveGANGenerator`` noise ``[B, latent_dim]`` -> waveform ``[B, 1, output_samples]`` in
(-1, 1); ``WaveGANDiscriminator`` waveform ``[B, 1, T]`` -> ``([logit [B, 1]], [[feature maps]])``,
the same output structure as the vocoders' ``Discriminators``, so ``distgan.losses.gan`` serves both.

BatchNorm makes D's output for one clip depend on the rest of its batch. A batch that holds real
and generated clips together (as the vocoder families' single D call does) would normalise each
with the statistics of the mixture, which hides from D the very difference it must learn; so D
declares ``separate_real_fake_calls`` and the training step judges real and generated audio in
separate calls (``distgan.train.step``). How BatchNorm's statistics span ranks is chosen by the
training side (``dist.batchnorm``); these modules use plain ``nn.BatchNorm1d``.
"""

from __future__ import annotations

import hashlib
import math

import torch
from torch import nn

from distgan.families.wavegan.config import WaveGANConfig

__all__ = ["WaveGANDiscriminator", "WaveGANGenerator", "latent_noise", "transposed_padding"]


def latent_noise(count: int, latent_dim: int, seed: tuple[int | str, ...]) -> torch.Tensor:
    """Standard normal noise ``[count, latent_dim]`` (float32, CPU), a pure function of ``seed``:
    training draws it from (run seed, step, rank, micro-batch), so every rank draws its own and a
    resumed run draws the same again without any random state in the checkpoint."""
    digest = hashlib.blake2b(repr(tuple(seed)).encode(), digest_size=8).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
    return torch.randn(count, latent_dim, generator=generator)


def transposed_padding(kernel_size: int, stride: int) -> tuple[int, int]:
    """``(padding, output_padding)`` that make a transposed convolution exactly ``stride`` x longer."""
    padding = max(0, math.ceil((kernel_size - stride) / 2))
    return padding, 2 * padding - (kernel_size - stride)


class WaveGANGenerator(nn.Module):
    """Noise ``[B, latent_dim]`` -> ``[B, 1, initial_length * prod(upsample_strides)]``: dense,
    reshape (BatchNorm and Tanh there too, as after every stage), then per stage a transposed
    convolution, BatchNorm and Tanh; a last convolution and tanh."""

    def __init__(self, cfg: WaveGANConfig) -> None:
        super().__init__()
        self.latent_dim, self.initial_length = cfg.latent_dim, cfg.initial_length
        self.output_samples = cfg.output_samples()
        channels = cfg.generator_channels
        self.dense = nn.Linear(cfg.latent_dim, channels[0] * cfg.initial_length)
        self.input_norm = nn.BatchNorm1d(channels[0])
        stages = []
        for c_in, c_out, stride in zip(channels[:-1], channels[1:], cfg.upsample_strides, strict=True):
            padding, output_padding = transposed_padding(cfg.kernel_size, stride)
            stages.append(nn.Sequential(
                nn.ConvTranspose1d(c_in, c_out, cfg.kernel_size, stride, padding, output_padding),
                nn.BatchNorm1d(c_out), nn.Tanh()))
        self.stages = nn.ModuleList(stages)
        self.output = nn.Conv1d(channels[-1], 1, cfg.kernel_size, padding=cfg.kernel_size // 2)

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        if noise.dim() != 2 or noise.shape[1] != self.latent_dim:
            raise ValueError(f"expected noise [B, {self.latent_dim}], got {list(noise.shape)}")
        x = self.dense(noise).view(noise.shape[0], -1, self.initial_length)
        x = torch.tanh(self.input_norm(x))
        for stage in self.stages:
            x = stage(x)
        return torch.tanh(self.output(x))


class WaveGANDiscriminator(nn.Module):
    """``[B, 1, T]`` (T the generator's length) -> ``([logit [B, 1]], [[each convolution's output]])``.

    Strided convolutions with LeakyReLU, BatchNorm on all but the first (DCGAN's choice: the
    first layer sees the raw signal's own scale); then flatten and one dense layer.
    """

    # Real and generated clips go through D in separate calls (see the module docstring).
    separate_real_fake_calls = True

    def __init__(self, cfg: WaveGANConfig) -> None:
        super().__init__()
        layers = []
        length, c_in = cfg.output_samples(), 1
        for i, c_out in enumerate(cfg.discriminator_channels):
            conv = nn.Conv1d(c_in, c_out, cfg.kernel_size, cfg.discriminator_stride, padding=cfg.kernel_size // 2)
            norm = nn.BatchNorm1d(c_out) if i > 0 else nn.Identity()
            layers.append(nn.Sequential(conv, norm, nn.LeakyReLU(cfg.leaky_relu_slope)))
            length = (length + 2 * (cfg.kernel_size // 2) - cfg.kernel_size) // cfg.discriminator_stride + 1
            c_in = c_out
        self.layers = nn.ModuleList(layers)
        self.input_samples = cfg.output_samples()
        self.dense = nn.Linear(c_in * length, 1)

    def forward(self, wave: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        if wave.dim() == 2:
            wave = wave.unsqueeze(1)
        if wave.shape[1:] != (1, self.input_samples):
            raise ValueError(f"expected waveforms [B, 1, {self.input_samples}], got {list(wave.shape)}")
        features = []
        x = wave
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return [self.dense(x.flatten(1))], [features]
