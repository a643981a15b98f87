"""DAC's ``model.generator`` section: the codec (encoder, residual VQ, decoder), its discriminator
and its codebook loss weights.

The defaults are the official 44.1 kHz model's (descript-audio-codec ``conf/final/44khz.yml``):
a 64-wide encoder with strides 2, 4, 8, 8 (hop 512), 9 codebooks of 1024 entries looked up in 8
dimensions, half of each batch trained with quantizer dropout, a 1536-wide decoder with strides
8, 8, 4, 2; MPD periods 2, 3, 5, 7, 11 and the multi-band STFT discriminator at windows 2048,
1024, 512 over five bands. The shared loss weights are ``loss.*`` (mel 15, adversarial 1,
feature matching 2); the codebook ones are here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from distgan.config import Config, ConfigError, FamilyConfig


@dataclass
class DACConfig(FamilyConfig):
    family: str = "dac"
    # dac.model.DAC: the encoder doubles ``encoder_dim`` at each stride; null latent_dim:
    # encoder_dim * 2 ** len(encoder_rates), as DAC.
    encoder_dim: int = 64
    encoder_rates: list[int] = field(default_factory=lambda: [2, 4, 8, 8])
    latent_dim: int | None = None
    decoder_dim: int = 1536
    decoder_rates: list[int] = field(default_factory=lambda: [8, 8, 4, 2])
    # The residual vector quantizer: n_codebooks codebooks of codebook_size entries, each looked up
    # (L2-normalised) in codebook_dim dimensions.
    n_codebooks: int = 9
    codebook_size: int = 1024
    codebook_dim: int = 8
    # The share of each batch trained with a random number of codebooks (1..n_codebooks), so that
    # fewer codebooks (a lower bitrate) decode too. DAC's yml files write 0.5 / 1.0.
    quantizer_dropout: float = 0.5
    # The discriminator (dac.model.Discriminator): MPD's periods and widths, the multi-band
    # STFT discriminator's windows, bands (fractions of the bins) and width.
    mpd_periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    mpd_channels: list[int] = field(default_factory=lambda: [32, 128, 512, 1024, 1024])
    mrd_fft_sizes: list[int] = field(default_factory=lambda: [2048, 1024, 512])
    mrd_bands: list[list[float]] = field(
        default_factory=lambda: [[0.0, 0.1], [0.1, 0.25], [0.25, 0.5], [0.5, 0.75], [0.75, 1.0]])
    mrd_channels: int = 32
    # DAC's lambdas vq/commitment_loss and vq/codebook_loss.
    commitment_weight: float = 0.25
    codebook_weight: float = 1.0
    # Validation also decodes with these many codebooks (the bitrates quantizer dropout trains for).
    val_codebooks: list[int] = field(default_factory=lambda: [1, 4])

    def hop_length(self) -> int:
        """Audio samples per code frame: the product of the encoder's strides."""
        return math.prod(self.encoder_rates)

    def decoded_samples(self, samples: int) -> int:
        """What the codec returns for ``samples`` input samples, before cropping to them: the clip is
        right-padded to whole frames, and each transposed convolution (kernel ``2 s``, padding
        ``ceil(s / 2)``) gives ``L s + s - 2 ceil(s / 2)``: ``L s`` for an even stride, one short for an
        odd one (DAC's 24 and 16 kHz layouts: 8 short of whole frames)."""
        length = math.ceil(samples / self.hop_length())
        for stride in self.decoder_rates:
            length = length * stride + stride - 2 * math.ceil(stride / 2)
        return length

    def latent(self) -> int:
        return self.encoder_dim * 2 ** len(self.encoder_rates) if self.latent_dim is None else self.latent_dim


def check(cfg: Config) -> None:
    g = cfg.model.generator
    if min(g.encoder_dim, g.decoder_dim, g.n_codebooks, g.codebook_dim) < 1 or g.codebook_size < 2:
        raise ConfigError("model.generator: encoder_dim, decoder_dim, n_codebooks and codebook_dim must be positive "
                          f"and codebook_size at least 2, got {g.encoder_dim}, {g.decoder_dim}, {g.n_codebooks}, "
                          f"{g.codebook_dim} and {g.codebook_size}")
    for name in ("encoder_rates", "decoder_rates", "mpd_periods", "mpd_channels", "mrd_fft_sizes"):
        values = getattr(g, name)
        if not values or min(values) < 1:
            raise ConfigError(f"model.generator.{name}: a non-empty list of positive ints, got {values}")
    if math.prod(g.encoder_rates) != math.prod(g.decoder_rates):
        raise ConfigError(f"model.generator: the decoder's strides {g.decoder_rates} must multiply to the encoder's "
                          f"hop {math.prod(g.encoder_rates)} (encoder_rates {g.encoder_rates}), or the decoded "
                          "audio is not the input's length")
    if g.decoder_dim % 2 ** len(g.decoder_rates):
        raise ConfigError(f"model.generator.decoder_dim={g.decoder_dim} must be divisible by "
                          f"{2 ** len(g.decoder_rates)} (it halves at each of the {len(g.decoder_rates)} strides)")
    if not 0.0 <= g.quantizer_dropout <= 1.0:
        raise ConfigError(f"model.generator.quantizer_dropout={g.quantizer_dropout}: a share of the batch in [0, 1]")
    if any(len(band) != 2 or not 0.0 <= band[0] < band[1] <= 1.0 for band in g.mrd_bands):
        raise ConfigError(f"model.generator.mrd_bands={g.mrd_bands}: [low, high] fractions of the bins, "
                          "0 <= low < high <= 1")
    if any(not 1 <= k <= g.n_codebooks for k in g.val_codebooks):
        raise ConfigError(f"model.generator.val_codebooks={g.val_codebooks}: each between 1 and n_codebooks "
                          f"({g.n_codebooks})")
    if cfg.loss.adversarial != "lsgan" or cfg.loss.generator_adversarial != "same":
        raise ConfigError(f"dac trains with least-squares GAN losses: set loss.adversarial: lsgan (got "
                          f"{cfg.loss.adversarial!r}) and leave loss.generator_adversarial: same")
    if cfg.loss.mel != "multiscale":
        raise ConfigError("dac's mel loss is the multi-scale one (7 windows, 32 to 2048): set loss.mel: multiscale")
    segment = cfg.data.segment_samples
    if segment < max(g.mrd_fft_sizes):
        raise ConfigError(f"data.segment_samples={segment} is shorter than the longest discriminator window "
                          f"{max(g.mrd_fft_sizes)} (model.generator.mrd_fft_sizes)")
    if g.decoded_samples(segment) < segment:
        # DAC's own conf/final/16khz.yml asks for this (6080 samples, 19 whole frames); its losses fail too.
        # The residues modulo the codec's hop repeat within hop_length() steps of audio.hop_length.
        step = cfg.audio.hop_length
        longer = [n for n in range(segment + step, segment + step * g.hop_length() + 1, step)
                  if g.decoded_samples(n) >= n]
        raise ConfigError(f"data.segment_samples={segment}: the codec decodes it to {g.decoded_samples(segment)} "
                          f"samples (an odd stride of model.generator.decoder_rates={g.decoder_rates} loses a sample, which "
                          "the strides after it multiply), "
                          "too few to compare with the clip; "
                          + (f"the next length that decodes whole and is a multiple of audio.hop_length is {longer[0]}"
                             if longer else "take a length that is not a whole number of frames "
                             f"({g.hop_length()} samples) and an audio.hop_length that divides it"))
