"""gemelo-ai/vocos's own code (``vocos`` 0.1.0, the parity extra), for ``bench step --baseline
reference`` (``distgan.bench.reference_step``); imported only there, bench-only.

``VocosReferenceStep`` is ``vocos.experiment.VocosExp.training_step`` without Lightning, written
from reading it, with vocos' modules and losses: per batch a D update (the generated audio under
``no_grad``, MPD and MRD on ``(real, generated)``, each sub-discriminator called once per half,
hinge losses averaged per set, MRD x ``mrd_loss_coeff``), then a G update with G's forward run
again (Lightning calls ``training_step`` once per optimizer) and D's parameters not requiring
gradients (Lightning's ``toggle_optimizer``), then both cosine schedules step
(``transformers.get_cosine_schedule_with_warmup``, as ``configure_optimizers``). The mel features
are computed inside the step (``vocos.Vocos.forward``), as there.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from distgan.config import Config, OptimizerConfig

VOCOS_MPD_CHANNELS = [32, 128, 512, 1024, 1024]


class VocosReferenceStep:
    """One step of VocosExp on ``prepare``d batches; ``__call__`` returns its losses."""

    def __init__(self, cfg: Config, generator: nn.Module, discriminators: dict[str, nn.Module],
                 device: torch.device) -> None:
        from transformers import get_cosine_schedule_with_warmup
        from vocos.loss import (
            DiscriminatorLoss,
            FeatureMatchingLoss,
            GeneratorLoss,
            MelSpecReconstructionLoss,
        )

        self.cfg, self.device, g = cfg, device, cfg.model.generator
        self.generator = generator.to(device).train()
        self.mpd, self.mrd = (discriminators[kind].to(device).train() for kind in ("mpd", "mrd"))
        self.discriminators = [self.mpd, self.mrd]
        optim = cfg.optim.generator
        self.optim_d = torch.optim.AdamW([{"params": self.mpd.parameters()}, {"params": self.mrd.parameters()}],
                                         lr=optim.lr, betas=tuple(optim.betas))
        self.optim_g = torch.optim.AdamW(self.generator.parameters(), lr=optim.lr, betas=tuple(optim.betas))
        self.schedulers = [get_cosine_schedule_with_warmup(o, num_warmup_steps=optim.warmup_steps,
                                                           num_training_steps=cfg.train.max_steps)
                           for o in (self.optim_d, self.optim_g)]
        self.disc_loss, self.gen_loss, self.fm_loss = DiscriminatorLoss(), GeneratorLoss(), FeatureMatchingLoss()
        self.mel_loss = MelSpecReconstructionLoss(sample_rate=cfg.audio.sample_rate).to(device)
        self.mrd_coeff, self.mel_coeff = g.mrd_loss_coeff, g.mel_loss_coeff

    def prepare(self, wave: torch.Tensor) -> tuple[torch.Tensor]:
        """VocosDataModule yields the waveform alone; the features are the model's. (A copy: the
        bench's batches may be inference tensors, which autograd refuses to save.)"""
        return (wave.clone(),)

    def _generate(self, audio: torch.Tensor) -> torch.Tensor:
        """VocosExp.forward (``vocos.Vocos.forward`` runs in inference mode, so not that)."""
        g = self.generator
        return g.head(g.backbone(g.feature_extractor(audio)))

    def _d_update(self, audio: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            audio_hat = self._generate(audio)
        real_mp, gen_mp, _, _ = self.mpd(y=audio, y_hat=audio_hat)
        real_mrd, gen_mrd, _, _ = self.mrd(y=audio, y_hat=audio_hat)
        loss_mp, parts_mp, _ = self.disc_loss(real_mp, gen_mp)
        loss_mrd, parts_mrd, _ = self.disc_loss(real_mrd, gen_mrd)
        loss = loss_mp / len(parts_mp) + self.mrd_coeff * loss_mrd / len(parts_mrd)
        self.optim_d.zero_grad()
        loss.backward()
        self.optim_d.step()
        return loss

    def _g_update(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d_params = [p for d in self.discriminators for p in d.parameters()]
        for p in d_params:
            p.requires_grad_(False)
        audio_hat = self._generate(audio)
        _, gen_mp, fmap_r_mp, fmap_g_mp = self.mpd(y=audio, y_hat=audio_hat)
        _, gen_mrd, fmap_r_mrd, fmap_g_mrd = self.mrd(y=audio, y_hat=audio_hat)
        adv_mp, adv_mrd = self.gen_loss(gen_mp)[0] / len(gen_mp), self.gen_loss(gen_mrd)[0] / len(gen_mrd)
        fm_mp = self.fm_loss(fmap_r_mp, fmap_g_mp) / len(fmap_r_mp)
        fm_mrd = self.fm_loss(fmap_r_mrd, fmap_g_mrd) / len(fmap_r_mrd)
        mel = self.mel_loss(audio_hat, audio)
        loss = adv_mp + self.mrd_coeff * adv_mrd + fm_mp + self.mrd_coeff * fm_mrd + self.mel_coeff * mel
        self.optim_g.zero_grad()
        loss.backward()
        self.optim_g.step()
        for p in d_params:
            p.requires_grad_(True)
        return loss, mel

    def __call__(self, batch: tuple[torch.Tensor]) -> dict[str, torch.Tensor]:
        audio = batch[0].to(self.device, non_blocking=True)
        d_total = self._d_update(audio)
        g_total, mel = self._g_update(audio)
        for scheduler in self.schedulers:
            scheduler.step()
        return {"d/total": d_total.detach(), "g/mel": mel.detach(), "g/total": g_total.detach()}


class VocosReference:
    """What ``distgan.bench.reference_step`` asks of a family's original code."""

    cudnn_benchmark = False  # Lightning 1.8 leaves torch.backends.cudnn.benchmark as it is
    step_class = VocosReferenceStep

    def check(self, cfg: Config, need: Any) -> None:
        """What only this code fixes; ``need(field, ours, theirs)`` raises on a difference."""
        g = cfg.model.generator
        need("model.generator.mpd_channels", g.mpd_channels, VOCOS_MPD_CHANNELS)
        need("train.precision", cfg.train.precision, "fp32")
        need("train.mel_only_steps (pretrain_mel_steps)", cfg.train.mel_only_steps, 0)
        need("model.generator.decay_mel_coeff", g.decay_mel_coeff, False)
        for model in ("generator", "discriminator"):
            optim = getattr(cfg.optim, model)
            need(f"optim.{model}.grad_clip", optim.grad_clip, None)
            need(f"optim.{model}.schedule", optim.schedule, "cosine")
            need(f"optim.{model}.weight_decay", optim.weight_decay, 0.01)
        need("audio.fmin", cfg.audio.fmin, 0.0)
        need("audio.fmax", cfg.audio.fmax, None)

    def build(self, cfg: Config) -> tuple[nn.Module, dict[str, nn.Module]]:
        from vocos.discriminators import MultiPeriodDiscriminator, MultiResolutionDiscriminator
        from vocos.feature_extractors import MelSpectrogramFeatures
        from vocos.heads import ISTFTHead
        from vocos.models import VocosBackbone
        from vocos.pretrained import Vocos

        g, audio = cfg.model.generator, cfg.audio
        generator = Vocos(
            feature_extractor=MelSpectrogramFeatures(sample_rate=audio.sample_rate, n_fft=audio.n_fft,
                                                     hop_length=audio.hop_length, n_mels=audio.n_mels,
                                                     padding=g.padding),
            backbone=VocosBackbone(input_channels=audio.n_mels, dim=g.dim, intermediate_dim=g.intermediate_dim,
                                   num_layers=g.num_layers, layer_scale_init_value=g.layer_scale_init_value),
            head=ISTFTHead(dim=g.dim, n_fft=audio.n_fft, hop_length=audio.hop_length, padding=g.padding))
        return generator, {"mpd": MultiPeriodDiscriminator(periods=tuple(g.mpd_periods)),
                           "mrd": MultiResolutionDiscriminator(fft_sizes=tuple(g.mrd_fft_sizes))}

    def grad_clip(self, optim: OptimizerConfig) -> float | None:
        return None  # the official config sets no gradient_clip_val


REFERENCE = VocosReference()

