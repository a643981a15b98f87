"""DAC's torch side: the codec, its discriminator, its objective and its validator."""

from __future__ import annotations

from distgan.config import AudioConfig, Config
from distgan.families.dac.codec import DACCodec
from distgan.families.dac.config import DACConfig
from distgan.families.dac.discriminator import DACDiscriminator
from distgan.families.dac.objective import CodecObjective
from distgan.families.dac.reference import REFERENCE
from distgan.families.spec import FamilyParts


def build_generator(section: DACConfig, audio: AudioConfig) -> DACCodec:
    """Audio ``[B, 1, T]`` -> ``CodecOutput`` (audio, codes, latents, VQ losses), freshly initialised."""
    return DACCodec(section.encoder_dim, list(section.encoder_rates), section.latent(), section.decoder_dim,
                    list(section.decoder_rates), section.n_codebooks, section.codebook_size, section.codebook_dim,
                    audio.sample_rate)


def build_discriminator(cfg: Config) -> DACDiscriminator:
    g = cfg.model.generator
    return DACDiscriminator(list(g.mpd_periods), list(g.mrd_fft_sizes), g.mrd_bands, list(g.mpd_channels),
                            g.mrd_channels)


def validator(*args, **kwargs):
    """Reconstruction at full and reduced bitrates, codebook usage (training code, imported when a run validates)."""
    from distgan.families.dac.validation import CodecValidator

    return CodecValidator(*args, **kwargs)


PARTS = FamilyParts(build_generator=build_generator, build_discriminator=build_discriminator,
                    objective=CodecObjective, validator=validator, reference=REFERENCE)
