"""The original training step, for ``distgan bench step --baseline reference``.

The models, losses and mel functions are the original packages' own (``hifi-gan`` 0.0.2 for
jik876/hifi-gan, ``bigvgan`` 2.4.1 for NVIDIA/BigVGAN), imported here only, bench-only; the loop
around them does what each package's ``train.py`` does per batch, written from reading it:

1. G's forward; the log-mel of the generated audio (always: HiFi-GAN's single-scale loss needs it,
   BigVGAN computes it for its logs even with the multi-scale loss);
2. D update: each discriminator set called on ``(real, generated.detach())`` (inside, every
   sub-discriminator runs twice, once per half), ``discriminator_loss`` per set (its ``.item()``
   calls included), one backward, BigVGAN clips each set's gradient norm, AdamW steps;
3. G update: the mel loss (x45, or BigVGAN's multi-scale loss x ``loss.mel_weight``), each set on
   ``(real, generated)`` with D's parameters still requiring gradients (the original computes D's
   gradients in the G backward and discards them), feature and adversarial losses, one backward,
   BigVGAN clips G's gradient norm, AdamW steps;
4. BigVGAN (v2's train.py) steps both learning-rate schedulers every iteration.

Left out, as the original does them once per epoch or every N steps: HiFi-GAN's schedulers,
logging, checkpoints and validation. The input mel and the target mel come from the original's data
loader (computed in its workers): ``prepare`` computes them before the timed step. The original
sets ``torch.backends.cudnn.benchmark`` (HiFi-GAN on, BigVGAN off): ``CUDNN_BENCHMARK``.

HiFi-GAN's ``meldataset.mel_spectrogram`` no longer runs on current librosa (positional
arguments) and PyTorch (``stft`` without ``return_complex``); ``_hifigan_log_mel`` does its
arithmetic (reflect padding, magnitude with 1e-9 under the root, Slaney mel matrix, log of the
clamped value) with the filterbank cached once, which the original's cache meant to do.
Where librosa or matplotlib is not installed (a bare GPU machine), ``reference_imports`` stands in
for the little of them the originals import.

``bf16`` autocasts the forwards and losses (the original has no mixed precision); fp16 is
refused (it would need a loss scaler the original lacks).
"""

from __future__ import annotations

import contextlib
import io
import itertools
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from distgan.bench.reference_imports import provide_missing
from distgan.config import Config

CUDNN_BENCHMARK = {"hifigan": True, "bigvgan": False}
# jik876/hifi-gan's discriminators are fixed; BigVGAN's MPD widths are these times a multiplier.
HIFIGAN_D = {"kinds": ["mpd", "msd"], "periods": [2, 3, 5, 7, 11], "mpd_channels": [32, 128, 512, 1024, 1024],
             "mpd_use_spectral_norm": False, "msd_scales": 3,
             "msd_channels": [128, 128, 256, 512, 1024, 1024, 1024]}
MPD_WIDTHS = [32, 128, 512, 1024, 1024]


class ReferenceMismatch(ValueError):
    """The config asks for something the original code cannot build or does not compute."""


def _need(field: str, ours: object, theirs: object) -> None:
    if ours != theirs:
        raise ReferenceMismatch(f"--baseline reference: {field} is {ours!r}, the original code has {theirs!r}")


def check_config(cfg: Config) -> None:
    """What the original code can build and train as ``cfg`` describes; raises naming the field."""
    family, d, loss = cfg.model.generator.family, cfg.model.discriminator, cfg.loss
    if cfg.train.precision == "fp16":
        raise ReferenceMismatch("--baseline reference: train.precision is 'fp16'; the original code has no "
                                "loss scaler (use fp32 or bf16)")
    _need("loss.adversarial", loss.adversarial, "lsgan")
    _need("loss.adv_weight", loss.adv_weight, 1.0)
    _need("loss.fm_weight", loss.fm_weight, 2.0)
    _need("train.grad_accum", cfg.train.grad_accum, 1)
    _need("train.d_steps_per_g", cfg.train.d_steps_per_g, 1)
    for key in ("lr", "betas"):  # one learning rate and one pair of betas for both optimizers
        _need(f"optim.discriminator.{key} (optim.generator.{key})", getattr(cfg.optim.discriminator, key),
              getattr(cfg.optim.generator, key))
    if family == "hifigan":
        for key, value in HIFIGAN_D.items():
            _need(f"model.discriminator.{key}", getattr(d, key), value)
        _need("audio.n_mels", cfg.audio.n_mels, 80)
        _need("loss.mel", loss.mel, "single")
        _need("loss.mel_weight", loss.mel_weight, 45.0)
        for model in ("generator", "discriminator"):
            _need(f"optim.{model}.grad_clip", getattr(cfg.optim, model).grad_clip, None)
        return
    if loss.mel == "multiscale":
        _need("audio.fmin (the original's multi-scale mel loss starts at 0 Hz)", cfg.audio.fmin, 0.0)
        _need("audio.fmax_loss (the original's multi-scale mel loss ends at Nyquist)", cfg.audio.fmax_loss, None)
    _need("model.discriminator.kinds[0]", d.kinds[0], "mpd")
    _need("model.discriminator.kinds (two sets)", len(d.kinds), 2)
    multiplier = d.mpd_channels[0] / MPD_WIDTHS[0]
    _need("model.discriminator.mpd_channels", d.mpd_channels, [int(w * multiplier) for w in MPD_WIDTHS])
    clips = {cfg.optim.generator.grad_clip, cfg.optim.discriminator.grad_clip}
    _need("optim.{generator,discriminator}.grad_clip (one value for both)", len(clips), 1)


def _hparams(cfg: Config) -> dict[str, Any]:
    """``cfg`` under the original code's hyperparameter names."""
    g, d = cfg.model.generator, cfg.model.discriminator
    h: dict[str, Any] = {key: getattr(g, key) for key in (
        "resblock", "upsample_rates", "upsample_kernel_sizes", "upsample_initial_channel", "resblock_kernel_sizes",
        "resblock_dilation_sizes", "activation", "snake_logscale", "use_tanh_at_final", "use_bias_at_final")}
    h.update(num_mels=cfg.audio.n_mels, sampling_rate=cfg.audio.sample_rate, mpd_reshapes=d.periods,
             use_spectral_norm=d.mpd_use_spectral_norm, discriminator_channel_mult=d.mpd_channels[0] / MPD_WIDTHS[0],
             resolutions=d.mrd_resolutions, cqtd_filters=d.cqtd_filters, cqtd_max_filters=d.cqtd_max_filters,
             cqtd_filters_scale=d.cqtd_filters_scale, cqtd_dilations=d.cqtd_dilations,
             cqtd_hop_lengths=d.cqtd_hop_lengths, cqtd_n_octaves=d.cqtd_n_octaves,
             cqtd_bins_per_octaves=d.cqtd_bins_per_octaves)
    return h


def build_models(cfg: Config) -> tuple[nn.Module, dict[str, nn.Module]]:
    """The original generator and discriminator sets (keyed by distgan's attribute names); the
    constructors' progress prints are dropped."""
    check_config(cfg)
    provide_missing()
    with contextlib.redirect_stdout(io.StringIO()):
        return _build_models(cfg)


def _build_models(cfg: Config) -> tuple[nn.Module, dict[str, nn.Module]]:
    if cfg.model.generator.family == "hifigan":
        from hifi_gan.env import AttrDict
        from hifi_gan.models import Generator, MultiPeriodDiscriminator, MultiScaleDiscriminator

        return Generator(AttrDict(_hparams(cfg))), {"mpd": MultiPeriodDiscriminator(),
                                                    "msd": MultiScaleDiscriminator()}
    from bigvgan import discriminators
    from bigvgan.bigvgan import BigVGAN
    from bigvgan.env import AttrDict

    h = AttrDict(_hparams(cfg))
    second = {"mrd": discriminators.MultiResolutionDiscriminator,
              "cqtd": discriminators.MultiScaleSubbandCQTDiscriminator}[cfg.model.discriminator.kinds[1]]
    return BigVGAN(h), {"mpd": discriminators.MultiPeriodDiscriminator(h),
                        cfg.model.discriminator.kinds[1]: second(h)}


def copy_weights_into(generator: nn.Module, discriminator: nn.Module, reference_g: nn.Module,
                      reference_d: dict[str, nn.Module]) -> None:
    """Give distgan's models the original models' weights (``distgan.models.reference_weights``)."""
    from distgan.models.reference_weights import load_reference_state_dict

    load_reference_state_dict(generator, reference_g.state_dict())
    for kind, module in reference_d.items():
        load_reference_state_dict(getattr(discriminator, kind), module.state_dict())


class ReferenceStep:
    """One step of the original train.py on ``prepare``d batches; ``__call__`` returns its losses."""

    def __init__(self, cfg: Config, generator: nn.Module, discriminators: dict[str, nn.Module],
                 device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        provide_missing()
        self.family = cfg.model.generator.family
        self.generator = generator.to(device).train()
        self.discriminators = [d.to(device).train() for d in discriminators.values()]
        optim = cfg.optim.generator  # the original uses one learning rate and one pair of betas for both
        self.optim_g = torch.optim.AdamW(self.generator.parameters(), optim.lr, betas=list(optim.betas))
        self.optim_d = torch.optim.AdamW(itertools.chain(*(d.parameters() for d in reversed(self.discriminators))),
                                         optim.lr, betas=list(optim.betas))
        # BigVGAN always clips (its train.py's default bound is 1000); HiFi-GAN never does.
        self.clip = (optim.grad_clip or 1000.0) if self.family == "bigvgan" else None
        self.schedulers = ([torch.optim.lr_scheduler.ExponentialLR(o, gamma=optim.lr_decay)
                            for o in (self.optim_g, self.optim_d)] if self.family == "bigvgan" else [])
        self.bf16 = cfg.train.precision == "bf16"
        self.multiscale = None
        if cfg.loss.mel == "multiscale":
            from bigvgan.loss import MultiScaleMelSpectrogramLoss

            ms = cfg.loss.multiscale_mel
            self.multiscale = MultiScaleMelSpectrogramLoss(cfg.audio.sample_rate, n_mels=list(ms.n_mels),
                                                           window_lengths=list(ms.window_lengths),
                                                           clamp_eps=ms.clamp_eps, pow=ms.power)
        self._basis: dict[tuple[float | None, torch.device], torch.Tensor] = {}  # the original caches these
        self._window: dict[torch.device, torch.Tensor] = {}
        self._losses = self._import_losses()

    def _import_losses(self):
        if self.family == "hifigan":
            from hifi_gan import models
        else:
            from bigvgan import loss as models
        return models.discriminator_loss, models.generator_loss, models.feature_loss

    def log_mel(self, wave: torch.Tensor, fmax: float | None) -> torch.Tensor:
        a = self.cfg.audio
        if self.family == "bigvgan":
            from bigvgan.meldataset import mel_spectrogram

            return mel_spectrogram(wave, a.n_fft, a.n_mels, a.sample_rate, a.hop_length, a.win_length, a.fmin, fmax)
        return self._hifigan_log_mel(wave, fmax)

    def _hifigan_log_mel(self, wave: torch.Tensor, fmax: float | None) -> torch.Tensor:
        a = self.cfg.audio
        bool(wave.min() < -1.0), bool(wave.max() > 1.0)  # the original's range warnings (two host syncs)
        if (fmax, wave.device) not in self._basis:
            from librosa.filters import mel

            basis = mel(sr=a.sample_rate, n_fft=a.n_fft, n_mels=a.n_mels, fmin=a.fmin, fmax=fmax)
            self._basis[(fmax, wave.device)] = torch.from_numpy(basis).float().to(wave.device)
        pad = (a.n_fft - a.hop_length) // 2
        padded = F.pad(wave.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        if wave.device not in self._window:
            self._window[wave.device] = torch.hann_window(a.win_length, device=wave.device)
        spec = torch.stft(padded, a.n_fft, hop_length=a.hop_length, win_length=a.win_length,
                          window=self._window[wave.device], center=False, return_complex=True)
        magnitude = torch.sqrt(torch.view_as_real(spec).pow(2).sum(-1) + 1e-9)
        return torch.log(torch.clamp(self._basis[(fmax, wave.device)] @ magnitude, min=1e-5))

    def prepare(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input mel, waveform, target mel) as the original's data loader yields them, on the host."""
        a = self.cfg.audio
        with torch.no_grad():
            return self.log_mel(wave, a.fmax), wave, self.log_mel(wave, a.fmax_loss)

    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def __call__(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        discriminator_loss, generator_loss, feature_loss = self._losses
        x, y, y_mel = (t.to(self.device, non_blocking=True) for t in batch)
        y = y.unsqueeze(1)
        with self._autocast():
            y_g_hat = self.generator(x)
            y_g_hat_mel = self.log_mel(y_g_hat.squeeze(1).float(), self.cfg.audio.fmax_loss)
            self.optim_d.zero_grad()
            loss_disc_all = sum(discriminator_loss(*d(y, y_g_hat.detach())[:2])[0] for d in self.discriminators)
        loss_disc_all.backward()
        if self.clip is not None:
            for d in self.discriminators:
                torch.nn.utils.clip_grad_norm_(d.parameters(), self.clip)
        self.optim_d.step()

        self.optim_g.zero_grad()
        with self._autocast():
            if self.multiscale is not None:
                loss_mel = self.multiscale(y.float(), y_g_hat.float()) * self.cfg.loss.mel_weight
            else:
                loss_mel = F.l1_loss(y_mel, y_g_hat_mel) * self.cfg.loss.mel_weight
            loss_gen_all = loss_mel
            for d in self.discriminators:
                _, y_d_hat_g, fmap_r, fmap_g = d(y, y_g_hat)
                loss_gen_all = loss_gen_all + feature_loss(fmap_r, fmap_g) + generator_loss(y_d_hat_g)[0]
        loss_gen_all.backward()
        if self.clip is not None:
            torch.nn.utils.clip_grad_norm_(self.generator.parameters(), self.clip)
        self.optim_g.step()
        for scheduler in self.schedulers:
            scheduler.step()
        return {"d/total": loss_disc_all.detach(), "g/mel": loss_mel.detach() / self.cfg.loss.mel_weight,
                "g/total": loss_gen_all.detach()}
