"""Vocos's torch side: its generator and mel front end, its MPD + MRD, its objective."""

from __future__ import annotations

from distgan.config import AudioConfig, Config
from distgan.families.spec import FamilyParts
from distgan.families.vocoder import validator
from distgan.families.vocos.config import VocosConfig
from distgan.families.vocos.discriminators import VocosDiscriminator
from distgan.families.vocos.modules import VocosGenerator, VocosMelFeatures
from distgan.families.vocos.objective import VocosObjective
from distgan.families.vocos.reference import REFERENCE


def build_generator(section: VocosConfig, audio: AudioConfig) -> VocosGenerator:
    """Vocos mel features ``[B, n_mels, frames]`` -> waveform ``[B, 1, samples]``, freshly initialised."""
    return VocosGenerator(audio.n_mels, audio.n_fft, audio.hop_length, section.dim, section.intermediate_dim,
                          section.num_layers, section.layer_scale_init_value, section.padding)


def front_end(section: VocosConfig, audio: AudioConfig) -> VocosMelFeatures:
    """What the generator takes, in training, validation and inference: vocos' mel features."""
    return VocosMelFeatures(audio.sample_rate, audio.n_fft, audio.hop_length, audio.n_mels, section.padding,
                            f_min=audio.fmin, f_max=audio.fmax)


def build_discriminator(cfg: Config) -> VocosDiscriminator:
    g = cfg.model.generator
    return VocosDiscriminator(g.mpd_periods, g.mrd_fft_sizes, g.mpd_channels)


def receptive_field(section: VocosConfig) -> tuple[int, int]:
    """Input frames either side one output sample reads: 3 per 7-tap convolution (the embedding
    and each block's depthwise one), plus the ISTFT's overlapping frames (4 at n_fft = 4 hops)."""
    reach = 3 * (section.num_layers + 1) + 4
    return reach, reach


PARTS = FamilyParts(build_generator=build_generator, build_discriminator=build_discriminator,
                    objective=VocosObjective, validator=validator, receptive_field=receptive_field,
                    front_end=front_end, reference=REFERENCE)
