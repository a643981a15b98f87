"""The WaveGAN family's ``model.generator`` section (its G's and its D's shapes) and checks."""

from __future__ import annotations

from dataclasses import dataclass, field

from distgan.config.schema import Config, ConfigError, FamilyConfig


@dataclass
class WaveGANConfig(FamilyConfig):
    """The noise-to-waveform GAN (``model.generator.family: wavegan``; WaveGAN, Donahue et al. 2019).

    G: noise ``[B, latent_dim]`` -> dense -> ``[B, generator_channels[0], initial_length]`` ->
    one transposed convolution (stride ``upsample_strides[i]``) + BatchNorm + Tanh per stage ->
    convolution + tanh -> ``[B, 1, initial_length * prod(upsample_strides)]``, which must equal
    ``data.segment_samples``. D: strided convolutions (BatchNorm from the second on, LeakyReLU),
    flatten, dense -> one logit. The defaults are full size: 16384 samples, about 1 s at 16 kHz.
    (These fields were the ``model.wavegan`` section before families were declared; that key is
    still read, with a message.)
    """

    family: str = "wavegan"
    latent_dim: int = 100
    initial_length: int = 16
    # Channels after the dense layer, then after each transposed-convolution stage.
    generator_channels: list[int] = field(default_factory=lambda: [1024, 512, 256, 128, 64, 32])
    upsample_strides: list[int] = field(default_factory=lambda: [4, 4, 4, 4, 4])
    kernel_size: int = 25
    discriminator_channels: list[int] = field(default_factory=lambda: [64, 128, 256, 512, 1024])
    discriminator_stride: int = 4
    leaky_relu_slope: float = 0.2

    def output_samples(self) -> int:
        """Length of every generated clip (the product of the stage strides times the first length)."""
        length = self.initial_length
        for stride in self.upsample_strides:
            length *= stride
        return length


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def check(cfg: Config) -> None:
    w = cfg.model.generator
    for name in ("latent_dim", "initial_length", "kernel_size", "discriminator_stride"):
        _need(getattr(w, name) >= 1, f"model.generator.{name} must be at least 1, got {getattr(w, name)}")
    _need(len(w.generator_channels) == len(w.upsample_strides) + 1,
          f"model.generator.generator_channels needs one entry more than upsample_strides (the dense layer's "
          f"channels, then one per stage): got {len(w.generator_channels)} and {len(w.upsample_strides)}")
    _need(w.upsample_strides and all(s >= 1 for s in w.upsample_strides),
          "model.generator.upsample_strides: at least one stage, each stride at least 1")
    _need(all(c >= 1 for c in w.generator_channels + w.discriminator_channels) and w.discriminator_channels,
          "model.generator.generator_channels and discriminator_channels: positive, and at least one convolution in D")
    _need(w.leaky_relu_slope >= 0, f"model.generator.leaky_relu_slope must be >= 0, got {w.leaky_relu_slope}")
    length = w.output_samples()
    _need(cfg.data.segment_samples == length,
          f"data.segment_samples={cfg.data.segment_samples} must equal the wavegan generator's output length "
          f"{length} (model.generator.initial_length={w.initial_length} x upsample_strides {w.upsample_strides})")


def refusal(keys: list[str]) -> str:
    return (f"{', '.join(keys)}: only mel-to-wave vocoders read these (a wavegan generator takes noise: no mel "
            "loss, no feature matching, no copy-synthesis metrics); remove them")
