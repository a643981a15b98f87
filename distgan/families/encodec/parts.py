"""EnCodec's torch side: the codec, the shared discriminator sets (``model.discriminator``: EnCodec's
MS-STFTD is kind ``msstftd``), its objective and its validator."""

from __future__ import annotations

from distgan.config import AudioConfig
from distgan.families.encodec.codec import EncodecCodec
from distgan.families.encodec.config import EncodecConfig
from distgan.families.encodec.objective import EncodecObjective
from distgan.families.encodec.quantize import CodecQuantizer
from distgan.families.encodec.seanet import SEANetDecoder, SEANetEncoder, SEANetSettings
from distgan.families.spec import FamilyParts
from distgan.families.vocoder import build_discriminator


def seanet_settings(section: EncodecConfig) -> SEANetSettings:
    return SEANetSettings(dimension=section.dimension, n_filters=section.n_filters,
                          n_residual_layers=section.n_residual_layers, ratios=tuple(section.ratios),
                          elu_alpha=section.elu_alpha, norm=section.norm, kernel_size=section.kernel_size,
                          last_kernel_size=section.last_kernel_size, residual_kernel_size=section.residual_kernel_size,
                          dilation_base=section.dilation_base, causal=section.causal, pad_mode=section.pad_mode,
                          true_skip=section.true_skip, compress=section.compress, lstm=section.lstm,
                          trim_right_ratio=section.trim_right_ratio)


def build_generator(section: EncodecConfig, audio: AudioConfig) -> EncodecCodec:
    """Audio ``[B, 1, T]`` -> ``CodecOutput`` (audio, codes, latents, VQ losses), freshly initialised."""
    settings = seanet_settings(section)
    quantizer = CodecQuantizer(section.quantizer, section.dimension, section.n_codebooks(audio.sample_rate),
                               section.codebook_size, decay=section.ema_decay, epsilon=section.ema_epsilon,
                               kmeans_init=section.kmeans_init, kmeans_iters=section.kmeans_iters,
                               dead_code_threshold=section.dead_code_threshold, codebook_dim=section.codebook_dim)
    return EncodecCodec(SEANetEncoder(settings), SEANetDecoder(settings), quantizer, audio.sample_rate,
                        list(section.target_bandwidths), section.codebook_size)


def validator(*args, **kwargs):
    """Reconstruction at every target bandwidth, codebook usage (training code, imported when a run validates)."""
    from distgan.families.encodec.validation import EncodecValidator

    return EncodecValidator(*args, **kwargs)


PARTS = FamilyParts(build_generator=build_generator, build_discriminator=build_discriminator,
                    objective=EncodecObjective, validator=validator)
