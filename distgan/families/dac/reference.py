"""descript-audio-codec's own code (``descript-audio-codec`` 1.0.0, the parity extra), for ``bench
step --baseline reference`` (``distgan.bench.reference_step``); imported only there, bench-only.

``DACReferenceStep`` is ``scripts/train.py``'s ``train_loop`` without audiotools' data loader,
tracker and accelerator, written from reading it, with ``dac``'s modules and losses:

1. the codec's forward once (``dac.model.DAC`` in training mode: quantizer dropout draws its
   counts from the global RNG, as there); the clips and the reconstruction wrapped in
   ``AudioSignal`` for the losses;
2. D update: ``GANLoss.discriminator_loss`` (D called on the detached reconstruction, then on the
   real clips), backward, D's gradient norm clipped at 10, AdamW steps, D's ``ExponentialLR`` steps;
3. G update: the logged-only ``MultiScaleSTFTLoss`` and ``L1Loss`` (computed every step there,
   not in the total), ``MelSpectrogramLoss`` with the config's scales, ``GANLoss.generator_loss``
   (D called on the reconstruction and on the real clips, D's parameters still requiring
   gradients, as there), the lambdas' weighted sum, backward, G's norm clipped at 1000, AdamW
   and G's ``ExponentialLR`` step.

Left out: the data transform inside ``train_loop`` (``VolumeNorm``, ``RescaleAudio``,
``ShiftPhase``: the data pipeline's, which distgan's stream does not do either), the tracker's
logging (``.item()`` per value), validation and checkpoints. ``train.py`` turns cuDNN autotuning
on (``CUDNN_BENCHMARK`` unset).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from distgan.config import Config, OptimizerConfig

DAC_MPD_CHANNELS = [32, 128, 512, 1024, 1024]  # dac.model.discriminator.MPD's widths (fixed there)
DAC_MRD_CHANNELS = 32
D_GRAD_CLIP, G_GRAD_CLIP = 10.0, 1e3  # train_loop's literal bounds


class DACReferenceStep:
    """One ``train_loop`` on ``prepare``d batches; ``__call__`` returns its losses."""

    def __init__(self, cfg: Config, generator: nn.Module, discriminators: dict[str, nn.Module],
                 device: torch.device) -> None:
        from dac.nn.loss import GANLoss, L1Loss, MelSpectrogramLoss, MultiScaleSTFTLoss

        self.cfg, self.device, g, loss = cfg, device, cfg.model.generator, cfg.loss
        self.generator = generator.to(device).train()
        self.discriminator = discriminators[""].to(device).train()
        self.discriminators = [self.discriminator]
        self.optim_g, self.optim_d = (torch.optim.AdamW(model.parameters(), lr=optim.lr, betas=tuple(optim.betas))
                                      for model, optim in ((self.generator, cfg.optim.generator),
                                                           (self.discriminator, cfg.optim.discriminator)))
        self.schedulers = [torch.optim.lr_scheduler.ExponentialLR(o, gamma=cfg.optim.generator.lr_decay)
                           for o in (self.optim_d, self.optim_g)]
        ms, scales = loss.multiscale_mel, len(loss.multiscale_mel.window_lengths)
        self.mel_loss = MelSpectrogramLoss(n_mels=list(ms.n_mels), window_lengths=list(ms.window_lengths),
                                           mel_fmin=[cfg.audio.fmin] * scales, mel_fmax=[cfg.audio.fmax_loss] * scales,
                                           pow=ms.power, clamp_eps=ms.clamp_eps, mag_weight=0.0)
        self.stft_loss, self.waveform_loss = MultiScaleSTFTLoss(), L1Loss()
        self.gan_loss = GANLoss(self.discriminator)
        # conf/base.yml's lambdas, from the config's weights (the same names distgan logs).
        self.lambdas = {"mel/loss": loss.mel_weight, "adv/feat_loss": loss.fm_weight, "adv/gen_loss": loss.adv_weight,
                        "vq/commitment_loss": g.commitment_weight, "vq/codebook_loss": g.codebook_weight}

    def prepare(self, wave: torch.Tensor) -> tuple[torch.Tensor]:
        """The clips ``[B, 1, T]`` (a copy: the bench's batches may be inference tensors)."""
        return (wave.unsqueeze(1).clone(),)

    def __call__(self, batch: tuple[torch.Tensor]) -> dict[str, torch.Tensor]:
        from audiotools import AudioSignal

        sample_rate = self.cfg.audio.sample_rate
        signal = AudioSignal(batch[0].to(self.device, non_blocking=True), sample_rate)
        out = self.generator(signal.audio_data, sample_rate)
        recons = AudioSignal(out["audio"], sample_rate)
        output = {"adv/disc_loss": self.gan_loss.discriminator_loss(recons, signal)}
        self.optim_d.zero_grad()
        output["adv/disc_loss"].backward()
        torch.nn.utils.clip_grad_norm_(self.discriminator.parameters(), D_GRAD_CLIP)
        self.optim_d.step()
        self.schedulers[0].step()

        output["stft/loss"] = self.stft_loss(recons, signal)
        output["mel/loss"] = self.mel_loss(recons, signal)
        output["waveform/loss"] = self.waveform_loss(recons, signal)
        output["adv/gen_loss"], output["adv/feat_loss"] = self.gan_loss.generator_loss(recons, signal)
        output["vq/commitment_loss"], output["vq/codebook_loss"] = out["vq/commitment_loss"], out["vq/codebook_loss"]
        output["loss"] = sum(weight * output[name] for name, weight in self.lambdas.items())
        self.optim_g.zero_grad()
        output["loss"].backward()
        torch.nn.utils.clip_grad_norm_(self.generator.parameters(), G_GRAD_CLIP)
        self.optim_g.step()
        self.schedulers[1].step()
        return {"d/total": output["adv/disc_loss"].detach(), "g/mel": output["mel/loss"].detach(),
                "g/total": output["loss"].detach()}


class DACReference:
    """What ``distgan.bench.reference_step`` asks of a family's original code."""

    cudnn_benchmark = True  # train.py: torch.backends.cudnn.benchmark = CUDNN_BENCHMARK, default 1
    step_class = DACReferenceStep

    def check(self, cfg: Config, need: Any) -> None:
        """What only this code fixes; ``need(field, ours, theirs)`` raises on a difference."""
        g, optim = cfg.model.generator, cfg.optim
        need("model.generator.mpd_channels", list(g.mpd_channels), DAC_MPD_CHANNELS)
        need("model.generator.mrd_channels", g.mrd_channels, DAC_MRD_CHANNELS)
        need("train.precision", cfg.train.precision, "fp32")  # conf/base.yml: amp false
        need("train.mel_only_steps", cfg.train.mel_only_steps, 0)
        need("train.d_warmup_steps", cfg.train.d_warmup_steps, 0)
        need("optim.discriminator.grad_clip", optim.discriminator.grad_clip, D_GRAD_CLIP)
        need("optim.generator.grad_clip", optim.generator.grad_clip, G_GRAD_CLIP)
        need("optim.discriminator.lr_decay (optim.generator.lr_decay)", optim.discriminator.lr_decay,
             optim.generator.lr_decay)
        for model in ("generator", "discriminator"):
            o = getattr(optim, model)
            need(f"optim.{model}.schedule", o.schedule, "exponential")
            need(f"optim.{model}.lr_decay_every", o.lr_decay_every, "step")
            need(f"optim.{model}.weight_decay", o.weight_decay, 0.01)  # torch's AdamW default
            need(f"optim.{model}.eps", o.eps, 1e-8)

    def build(self, cfg: Config) -> tuple[nn.Module, dict[str, nn.Module]]:
        """dac.model.DAC and dac.model.Discriminator (no MSD: ``rates`` empty, as every released conf);
        the discriminator keyed ``""``: it is distgan's whole D, not one of its attributes."""
        from dac.model import DAC, Discriminator

        g, rate = cfg.model.generator, cfg.audio.sample_rate
        generator = DAC(encoder_dim=g.encoder_dim, encoder_rates=list(g.encoder_rates), latent_dim=g.latent_dim,
                        decoder_dim=g.decoder_dim, decoder_rates=list(g.decoder_rates), n_codebooks=g.n_codebooks,
                        codebook_size=g.codebook_size, codebook_dim=g.codebook_dim,
                        quantizer_dropout=g.quantizer_dropout, sample_rate=rate)
        discriminator = Discriminator(rates=[], periods=list(g.mpd_periods), fft_sizes=list(g.mrd_fft_sizes),
                                      sample_rate=rate, bands=[tuple(band) for band in g.mrd_bands])
        return generator, {"": discriminator}

    def grad_clip(self, optim: OptimizerConfig) -> float | None:
        return optim.grad_clip  # checked against train_loop's 10 (D) and 1000 (G)


REFERENCE = DACReference()
