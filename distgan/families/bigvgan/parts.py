"""BigVGAN's torch side: its generator, the shared MPD + MRD / CQT-D sets, the vocoder objective."""

from __future__ import annotations

from distgan.config import AudioConfig
from distgan.families.bigvgan.config import BigVGANConfig
from distgan.families.bigvgan.generator import BigVGANGenerator
from distgan.families.bigvgan.reference import REFERENCE
from distgan.families.hifigan.generator import receptive_field
from distgan.families.spec import FamilyParts
from distgan.families.vocoder import VocoderObjective, build_discriminator, validator


def build_generator(section: BigVGANConfig, audio: AudioConfig) -> BigVGANGenerator:
    """Log-mel ``[B, n_mels, frames]`` -> waveform ``[B, 1, frames * hop]``, freshly initialised."""
    g = section
    return BigVGANGenerator(
        n_mels=audio.n_mels, upsample_rates=g.upsample_rates, upsample_kernel_sizes=g.upsample_kernel_sizes,
        upsample_initial_channel=g.upsample_initial_channel, resblock=g.resblock,
        resblock_kernel_sizes=g.resblock_kernel_sizes, resblock_dilation_sizes=g.resblock_dilation_sizes,
        activation=g.activation, snake_logscale=g.snake_logscale, use_tanh_at_final=g.use_tanh_at_final,
        use_bias_at_final=g.use_bias_at_final, activation_checkpointing=g.activation_checkpointing)


PARTS = FamilyParts(build_generator=build_generator, build_discriminator=build_discriminator,
                    objective=VocoderObjective, validator=validator, receptive_field=receptive_field,
                    reference=REFERENCE)
