"""The models a config describes, built in one place for training, inference, export and benches.

``model.generator.family`` picks HiFi-GAN's or BigVGAN's generator (both read the shared layout
fields); ``model.discriminator.kinds`` picks the discriminator sets (``Discriminators``). The
``wavegan`` family (noise in, not a mel) is a pair of its own, shaped by ``model.wavegan``:
``build_models`` builds whichever pair a config describes. Nothing else in distgan constructs a
generator or a discriminator from a config.
"""

from __future__ import annotations

from torch import nn

from distgan.config import AudioConfig, DiscriminatorConfig, GeneratorConfig, ModelConfig, WaveGANConfig
from distgan.models.bigvgan.generator import BigVGANGenerator
from distgan.models.discriminators import Discriminators
from distgan.models.generator import HiFiGANGenerator
from distgan.models.wavegan import WaveGANDiscriminator, WaveGANGenerator

Generator = HiFiGANGenerator | BigVGANGenerator


def build_generator(cfg: GeneratorConfig, n_mels: int) -> Generator:
    """Log-mel ``[B, n_mels, frames]`` -> waveform ``[B, 1, frames * hop]``, freshly initialised."""
    if cfg.family == "hifigan":
        return HiFiGANGenerator(cfg, n_mels=n_mels)
    if cfg.family == "bigvgan":
        return BigVGANGenerator(
            n_mels=n_mels, upsample_rates=cfg.upsample_rates, upsample_kernel_sizes=cfg.upsample_kernel_sizes,
            upsample_initial_channel=cfg.upsample_initial_channel, resblock=cfg.resblock,
            resblock_kernel_sizes=cfg.resblock_kernel_sizes, resblock_dilation_sizes=cfg.resblock_dilation_sizes,
            activation=cfg.activation, snake_logscale=cfg.snake_logscale, use_tanh_at_final=cfg.use_tanh_at_final,
            use_bias_at_final=cfg.use_bias_at_final, activation_checkpointing=cfg.activation_checkpointing)
    if cfg.family == "wavegan":
        raise ValueError("this is a wavegan run: its generator turns noise into audio, not a mel spectrogram "
                         "into audio (distgan sample writes clips from it)")
    raise ValueError(f"unknown generator family {cfg.family!r}")


def build_discriminators(cfg: DiscriminatorConfig, sample_rate: int) -> Discriminators:
    """Every set of ``cfg.kinds`` as one module (one optimizer, one engine); ``sample_rate`` is the audio's."""
    return Discriminators(cfg, sample_rate=sample_rate)


def build_noise_generator(cfg: WaveGANConfig) -> WaveGANGenerator:
    """Noise ``[B, latent_dim]`` -> waveform ``[B, 1, cfg.output_samples()]``, freshly initialised."""
    return WaveGANGenerator(cfg)


def build_models(cfg: ModelConfig, audio: AudioConfig) -> tuple[nn.Module, nn.Module]:
    """The (generator, discriminator) pair of ``cfg.generator.family``, freshly initialised."""
    if cfg.generator.family == "wavegan":
        return build_noise_generator(cfg.wavegan), WaveGANDiscriminator(cfg.wavegan)
    return build_generator(cfg.generator, audio.n_mels), build_discriminators(cfg.discriminator, audio.sample_rate)
