"""EnCodec's ``model.generator`` section: SEANet, the residual VQ and its target bandwidths, and
the loss weights that are EnCodec's own.

The defaults are the 24 kHz model's (``encodec.model.EncodecModel.encodec_model_24khz`` and
``_get_model``): SEANet with 32 filters, ratios 8, 5, 4, 2 (hop 320, 75 frames/s), a 128-wide
latent, one residual block per stage, a two-layer LSTM, causal, weight norm, reflect padding; 32
codebooks of 1024 entries (the highest target, 24 kbps, at 0.75 kbps each) trained at 1.5, 3, 6,
12 and 24 kbps. The loss weights are the paper's (section 3.4): ``loss.mel_weight`` (lambda_f 1),
``loss.adv_weight`` (lambda_g 3) and ``loss.fm_weight`` (lambda_feat 3) are the shared ones,
``time_weight`` (lambda_t 0.1) and ``commitment_weight`` (lambda_w 1) are here. The frequency
loss's 64 mel bands at windows 2^6 .. 2^10 (audiocraft's) are here too (``frequency.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from distgan.config import Config, ConfigError, FamilyConfig


@dataclass
class EncodecConfig(FamilyConfig):
    family: str = "encodec"
    # SEANet (encodec.modules.SEANetEncoder / SEANetDecoder's arguments; activation ELU(elu_alpha)).
    dimension: int = 128
    n_filters: int = 32
    n_residual_layers: int = 1
    ratios: list[int] = field(default_factory=lambda: [8, 5, 4, 2])  # the decoder's order; the encoder reverses it
    elu_alpha: float = 1.0
    norm: Literal["weight_norm", "none", "time_group_norm"] = "weight_norm"
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_base: int = 2
    causal: bool = True
    pad_mode: Literal["reflect", "constant", "replicate"] = "reflect"
    true_skip: bool = False
    compress: int = 2
    lstm: int = 2  # LSTM layers after the encoder's and before the decoder's convolutions (0: none)
    trim_right_ratio: float = 1.0
    # The residual VQ: as many codebooks of codebook_size entries (EnCodec's ``bins``) as the highest
    # target bandwidth (kbps) needs; each training batch draws one of target_bandwidths.
    target_bandwidths: list[float] = field(default_factory=lambda: [1.5, 3.0, 6.0, 12.0, 24.0])
    codebook_size: int = 1024
    # ema: EnCodec's codebooks (EMA updates, k-means init, dead-code replacement); factorized: DAC's
    # (normalised lookups in codebook_dim dimensions, trained by codebook_weight x its codebook loss).
    quantizer: Literal["ema", "factorized"] = "ema"
    ema_decay: float = 0.99
    ema_epsilon: float = 1.0e-5
    kmeans_init: bool = True
    kmeans_iters: int = 50
    dead_code_threshold: int = 2  # EnCodec's threshold_ema_dead_code
    codebook_dim: int = 8  # factorized only
    codebook_weight: float = 1.0  # factorized only
    # The paper's lambda_t (time-domain L1) and lambda_w (commitment).
    time_weight: float = 0.1
    commitment_weight: float = 1.0
    # The frequency loss (frequency.py): L1 on power mels + L2 on their logs at each window (hop a quarter of it).
    freq_n_mels: int = 64
    freq_windows: list[int] = field(default_factory=lambda: [64, 128, 256, 512, 1024])
    freq_fmin: float = 64.0
    freq_floor: float = 1.0e-5

    def hop_length(self) -> int:
        """Audio samples per code frame: the product of the ratios."""
        return math.prod(self.ratios)

    def frame_rate(self, sample_rate: int) -> int:
        """Code frames per second, rounded up as EnCodec's ``frame_rate``."""
        return math.ceil(sample_rate / self.hop_length())

    def bandwidth_codebooks(self, sample_rate: int) -> list[int]:
        """Codebooks each target bandwidth uses (``codec.num_quantizers``)."""
        from distgan.families.encodec.codec import num_quantizers

        rate = self.frame_rate(sample_rate)
        top = num_quantizers(max(self.target_bandwidths), self.codebook_size, rate, 0)
        return [num_quantizers(bw, self.codebook_size, rate, top) for bw in self.target_bandwidths]

    def n_codebooks(self, sample_rate: int) -> int:
        """The codec's codebooks: what the highest target bandwidth uses."""
        return max(self.bandwidth_codebooks(sample_rate))


def check(cfg: Config) -> None:
    g = cfg.model.generator
    positive = {"dimension": g.dimension, "n_filters": g.n_filters, "kernel_size": g.kernel_size,
                "last_kernel_size": g.last_kernel_size, "residual_kernel_size": g.residual_kernel_size,
                "dilation_base": g.dilation_base, "compress": g.compress, "freq_n_mels": g.freq_n_mels,
                "kmeans_iters": g.kmeans_iters, "codebook_dim": g.codebook_dim}
    for name, value in positive.items():
        if value < 1:
            raise ConfigError(f"model.generator.{name}={value}: must be at least 1")
    for name in ("n_residual_layers", "lstm", "dead_code_threshold"):
        if getattr(g, name) < 0:
            raise ConfigError(f"model.generator.{name}={getattr(g, name)}: must not be negative")
    if not g.ratios or min(g.ratios) < 1:
        raise ConfigError(f"model.generator.ratios: a non-empty list of positive ints, got {g.ratios}")
    if g.n_filters * 2 ** len(g.ratios) // 2 < g.compress:
        raise ConfigError(f"model.generator.compress={g.compress} leaves no channel in the residual blocks")
    if g.codebook_size < 2 or g.codebook_size & (g.codebook_size - 1):
        raise ConfigError(f"model.generator.codebook_size={g.codebook_size}: a power of 2 (whole bits per code, "
                          "as EnCodec asserts)")
    if not g.target_bandwidths or min(g.target_bandwidths) <= 0 or sorted(g.target_bandwidths) != g.target_bandwidths:
        raise ConfigError(f"model.generator.target_bandwidths={g.target_bandwidths}: positive kbps in rising order")
    counts = g.bandwidth_codebooks(cfg.audio.sample_rate)
    if len(set(counts)) != len(counts):
        raise ConfigError(f"model.generator.target_bandwidths={g.target_bandwidths} give the same number of "
                          f"codebooks twice ({counts}, at {g.frame_rate(cfg.audio.sample_rate)} frames/s x "
                          f"{int(math.log2(g.codebook_size))} bits each)")
    if g.norm == "time_group_norm" and g.causal:
        raise ConfigError("model.generator.norm=time_group_norm normalises over the whole clip: it needs "
                          "model.generator.causal: false")
    if not 0.0 <= g.trim_right_ratio <= 1.0 or (not g.causal and g.trim_right_ratio != 1.0):
        raise ConfigError(f"model.generator.trim_right_ratio={g.trim_right_ratio}: in [0, 1], and 1 unless causal")
    if not 0.0 < g.ema_decay < 1.0 or g.ema_epsilon <= 0:
        raise ConfigError(f"model.generator.ema_decay={g.ema_decay} must be in (0, 1) and ema_epsilon="
                          f"{g.ema_epsilon} positive")
    for name in ("time_weight", "commitment_weight", "codebook_weight"):
        if getattr(g, name) < 0:
            raise ConfigError(f"model.generator.{name}={getattr(g, name)}: a loss weight, not negative")
    if not g.freq_windows or min(g.freq_windows) < 4:
        raise ConfigError(f"model.generator.freq_windows={g.freq_windows}: windows of at least 4 samples")
    if not 0.0 <= g.freq_fmin < cfg.audio.sample_rate / 2 or g.freq_floor <= 0:
        raise ConfigError(f"model.generator.freq_fmin={g.freq_fmin} must be in [0, sample_rate / 2) and "
                          f"freq_floor={g.freq_floor} positive")
    if cfg.loss.adversarial != "hinge" or cfg.loss.generator_adversarial != "same":
        raise ConfigError(f"encodec trains with hinge GAN losses: set loss.adversarial: hinge (got "
                          f"{cfg.loss.adversarial!r}) and leave loss.generator_adversarial: same")
    segment = cfg.data.segment_samples
    if segment <= max(g.freq_windows) // 2:
        raise ConfigError(f"data.segment_samples={segment} must exceed half the longest frequency-loss window "
                          f"(model.generator.freq_windows: {max(g.freq_windows)})")
    if segment % g.hop_length():
        raise ConfigError(f"data.segment_samples={segment}: a whole number of code frames (a multiple of the hop, "
                          f"{g.hop_length()} = the product of model.generator.ratios {g.ratios})")
