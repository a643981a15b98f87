"""NVIDIA's BigVGAN code (``bigvgan`` 2.4.1), for the parity tests and ``bench step --baseline
reference`` (``distgan.bench.reference_step``); imported only there, bench-only. Its v2
``train.py`` clips every model's gradient norm and steps both schedulers every iteration."""

from __future__ import annotations

from typing import Any

from torch import nn

from distgan.config import Config, OptimizerConfig
from distgan.families.bigvgan.release import CQTD_DEFAULTS, GENERATOR_DEFAULTS, MPD_WIDTHS
from distgan.families.hifigan.reference import HiFiGANReference


class BigVGANReference(HiFiGANReference):
    cudnn_benchmark = False  # BigVGAN's train.py leaves cuDNN autotuning off
    steps_schedulers = True

    def check(self, cfg: Config, need: Any) -> None:
        d, loss = cfg.model.discriminator, cfg.loss
        if loss.mel == "multiscale":
            need("audio.fmin (the original's multi-scale mel loss starts at 0 Hz)", cfg.audio.fmin, 0.0)
            need("audio.fmax_loss (the original's multi-scale mel loss ends at Nyquist)", cfg.audio.fmax_loss, None)
        need("model.discriminator.kinds[0]", d.kinds[0], "mpd")
        need("model.discriminator.kinds (two sets)", len(d.kinds), 2)
        multiplier = d.mpd_channels[0] / MPD_WIDTHS[0]
        need("model.discriminator.mpd_channels", d.mpd_channels, [int(w * multiplier) for w in MPD_WIDTHS])
        clips = {cfg.optim.generator.grad_clip, cfg.optim.discriminator.grad_clip}
        need("optim.{generator,discriminator}.grad_clip (one value for both)", len(clips), 1)

    def hparams(self, cfg: Config) -> dict[str, Any]:
        g, d = cfg.model.generator, cfg.model.discriminator
        h = super().hparams(cfg) | {key: getattr(g, key) for key in GENERATOR_DEFAULTS}
        return h | {"mpd_reshapes": d.periods, "use_spectral_norm": d.mpd_use_spectral_norm,
                    "discriminator_channel_mult": d.mpd_channels[0] / MPD_WIDTHS[0],
                    "resolutions": d.mrd_resolutions} | {key: getattr(d, key) for key in CQTD_DEFAULTS
                                                          if key != "cqtd_normalize_volume"}

    def build(self, cfg: Config) -> tuple[nn.Module, dict[str, nn.Module]]:
        from bigvgan import discriminators
        from bigvgan.bigvgan import BigVGAN
        from bigvgan.env import AttrDict

        h = AttrDict(self.hparams(cfg))
        second = {"mrd": discriminators.MultiResolutionDiscriminator,
                  "cqtd": discriminators.MultiScaleSubbandCQTDiscriminator}[cfg.model.discriminator.kinds[1]]
        return BigVGAN(h), {"mpd": discriminators.MultiPeriodDiscriminator(h),
                            cfg.model.discriminator.kinds[1]: second(h)}

    def losses(self) -> tuple[Any, Any, Any]:
        from bigvgan import loss

        return loss.discriminator_loss, loss.generator_loss, loss.feature_loss

    def log_mel(self, cfg: Config) -> Any:
        from bigvgan.meldataset import mel_spectrogram

        a = cfg.audio
        return lambda wave, fmax: mel_spectrogram(wave, a.n_fft, a.n_mels, a.sample_rate, a.hop_length,
                                                  a.win_length, a.fmin, fmax)

    def grad_clip(self, optim: OptimizerConfig) -> float | None:
        return optim.grad_clip or 1000.0  # its train.py's default bound


REFERENCE = BigVGANReference()
