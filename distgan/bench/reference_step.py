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
sets ``torch.backends.cudnn.benchmark`` (HiFi-GAN on, BigVGAN off): ``cudnn_benchmark``.

What differs between the two originals (their fixed settings, models, losses, mel function,
clipping, schedulers, cuDNN autotuning) is each family's reference hooks
(``distgan/families/{hifigan,bigvgan}/reference.py``, ``FamilyParts.reference``); a family
without them has no reference step. A family whose original trains otherwise names its own step
class (``step_class``: Vocos's and DAC's, ``distgan/families/{vocos,dac}/reference.py``).
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
from distgan.families import family_of


class ReferenceMismatch(ValueError):
    """The config asks for something the original code cannot build or does not compute."""


def _need(field: str, ours: object, theirs: object) -> None:
    if ours != theirs:
        raise ReferenceMismatch(f"--baseline reference: {field} is {ours!r}, the original code has {theirs!r}")


def reference_hooks(cfg: Config) -> Any:
    """The family's hooks of its original code (``FamilyParts.reference``); refused where it has none."""
    spec = family_of(cfg)
    hooks = spec.load_parts().reference
    if hooks is None:
        raise ReferenceMismatch(f"--baseline reference: model.generator.family {spec.name!r} has no reference "
                                "implementation to compare with")
    return hooks


def cudnn_benchmark(cfg: Config) -> bool:
    """Whether the original's train.py turns cuDNN autotuning on."""
    return reference_hooks(cfg).cudnn_benchmark


def check_config(cfg: Config) -> None:
    """What the original code can build and train as ``cfg`` describes; raises naming the field."""
    hooks, loss = reference_hooks(cfg), cfg.loss
    if cfg.train.precision == "fp16":
        raise ReferenceMismatch("--baseline reference: train.precision is 'fp16'; the original code has no "
                                "loss scaler (use fp32 or bf16)")
    if hooks.step_class is None:  # ReferenceStep's fixed losses (a family's own step checks its own)
        _need("loss.adversarial", loss.adversarial, "lsgan")
        _need("loss.adv_weight", loss.adv_weight, 1.0)
        _need("loss.fm_weight", loss.fm_weight, 2.0)
    _need("train.grad_accum", cfg.train.grad_accum, 1)
    _need("train.d_steps_per_g", cfg.train.d_steps_per_g, 1)
    for key in ("lr", "betas"):  # one learning rate and one pair of betas for both optimizers
        _need(f"optim.discriminator.{key} (optim.generator.{key})", getattr(cfg.optim.discriminator, key),
              getattr(cfg.optim.generator, key))
    hooks.check(cfg, _need)


def build_models(cfg: Config) -> tuple[nn.Module, dict[str, nn.Module]]:
    """The original generator and discriminator sets (keyed by distgan's attribute names); the
    constructors' progress prints are dropped."""
    check_config(cfg)
    provide_missing()
    with contextlib.redirect_stdout(io.StringIO()):
        return reference_hooks(cfg).build(cfg)


def copy_weights_into(generator: nn.Module, discriminator: nn.Module, reference_g: nn.Module,
                      reference_d: dict[str, nn.Module]) -> None:
    """Give distgan's models the original models' weights (``distgan.models.reference_weights``);
    ``reference_d``'s keys name the attribute of distgan's D each set loads into, ``""`` the whole D
    (an original with one discriminator module, DAC's)."""
    from distgan.models.reference_weights import load_reference_state_dict

    load_reference_state_dict(generator, reference_g.state_dict())
    for kind, module in reference_d.items():
        load_reference_state_dict(getattr(discriminator, kind) if kind else discriminator, module.state_dict())


class ReferenceStep:
    """One step of the original train.py on ``prepare``d batches; ``__call__`` returns its losses."""

    def __init__(self, cfg: Config, generator: nn.Module, discriminators: dict[str, nn.Module],
                 device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        provide_missing()
        hooks = reference_hooks(cfg)
        self.generator = generator.to(device).train()
        self.discriminators = [d.to(device).train() for d in discriminators.values()]
        optim = cfg.optim.generator  # the original uses one learning rate and one pair of betas for both
        self.optim_g = torch.optim.AdamW(self.generator.parameters(), optim.lr, betas=list(optim.betas))
        self.optim_d = torch.optim.AdamW(itertools.chain(*(d.parameters() for d in reversed(self.discriminators))),
                                         optim.lr, betas=list(optim.betas))
        # BigVGAN always clips (its train.py's default bound is 1000); HiFi-GAN never does.
        self.clip = hooks.grad_clip(optim)
        self.schedulers = ([torch.optim.lr_scheduler.ExponentialLR(o, gamma=optim.lr_decay)
                            for o in (self.optim_g, self.optim_d)] if hooks.steps_schedulers else [])
        self.bf16 = cfg.train.precision == "bf16"
        self.multiscale = None
        if cfg.loss.mel == "multiscale":
            from bigvgan.loss import MultiScaleMelSpectrogramLoss

            ms = cfg.loss.multiscale_mel
            self.multiscale = MultiScaleMelSpectrogramLoss(cfg.audio.sample_rate, n_mels=list(ms.n_mels),
                                                           window_lengths=list(ms.window_lengths),
                                                           clamp_eps=ms.clamp_eps, pow=ms.power)
        self.log_mel = hooks.log_mel(cfg)
        self._losses = hooks.losses()

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
