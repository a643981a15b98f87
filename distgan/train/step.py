"""One GAN training step: a discriminator update, then a generator update through the frozen D.

``GANStep`` holds the arithmetic of a step and nothing of the loop around it (schedules,
logging, checkpoints are ``trainer.py``'s). Per step, on ``train.grad_accum`` micro-batches:

1. unless G is still in its mel-only warm-up (``train.mel_only_steps``), D learns real vs.
   generated audio, the generated audio detached;
2. every ``train.d_steps_per_g``-th step (and every mel-only step), G learns from the terms its
   family's objective returns (``distgan.families.objective``; a mel vocoder's: the mel loss plus,
   after the warm-up, the adversarial and feature-matching losses) through D, which is frozen and
   called unwrapped (``ModelEngine.frozen``).

The two warm-ups follow each other: steps ``[0, mel_only_steps)`` train G alone on the mel loss,
the next ``train.d_warmup_steps`` train D alone against that G, frozen (a fresh discriminator
learns to judge a pretrained generator before its gradients reach it), then both train.

With one micro-batch, G's forward is shared by both halves (as HiFi-GAN does); with more, the G
half recomputes it rather than holding every graph. Logged losses are means over micro-batches.

What G takes (a mel, or noise drawn per step, rank and micro-batch) and which loss terms each
update has are the family's (``FamilyParts.objective``): the step asks the spec, never the
family's name. A BatchNorm discriminator (the WaveGAN family's) judges real and generated audio
in separate calls (``_discriminate``, read from the D module's ``separate_real_fake_calls``).

A non-finite loss term or gradient on any rank skips that update on every rank, optimizer
untouched, with one collective and one host read per step (``skips.py``).

With ``loss.balancer.enabled`` (EnCodec's loss balancer, ``distgan.losses.balancer``), G's terms
that are functions of its audio (the objective's ``audio_term_weights``) are not added up: their
gradients w.r.t. the generated audio are taken apart (``torch.autograd.grad``, which reaches no G
parameter), balanced into one gradient ``grad``, and G's engine backpropagates the surrogate
``sum(audio * grad) + unbalanced_total``, whose gradient at the audio is ``grad`` and whose other
part is the objective's remaining terms (a codec's quantizer losses). Through the engine's own
backward, so DDP's all-reduce, DeepSpeed ZeRO-1/2/3 and fp16 loss scaling apply as to any loss
(the audio gradients are taken before any loss scale, the surrogate is scaled; the frozen D
is told of each repeated gradient pass through it, ``ModelEngine.repeat_backward``, which ZeRO-3
needs to release its gathered parameters). On several
ranks the norms are averaged in one all-reduce per micro-batch (``codebook_sync.ProcessGroupReducer``),
so every rank applies the same scales; ``g/total`` still logs the objective's weighted total,
``balancer/<term>`` each term's scale.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from distgan.config import Config, ConfigError
from distgan.distributed import ProcessInfo
from distgan.families import family_of
from distgan.losses.balancer import Balancer
from distgan.train.codebook_sync import ProcessGroupReducer
from distgan.train.ema import ModelEMA
from distgan.train.engine import ModelEngine
from distgan.train.skips import SkipGuard, Values


class GANStep:
    """``phase(name)`` wraps each phase (``g_forward``, ``d_update``, ``g_update``, ``ema``); ``count``
    adds to the logger's running counts (``skipped_updates/{g,d}``); ``ema``: the average of G's
    weights, which each G update that was not skipped moves (``ema.py``)."""

    def __init__(self, cfg: Config, g: ModelEngine, d: ModelEngine, info: ProcessInfo,
                 mel_input: torch.nn.Module, mel_loss: torch.nn.Module,
                 phase: Callable[[str], contextlib.AbstractContextManager],
                 count: Callable[[dict[str, float]], None], ema: ModelEMA | None = None) -> None:
        self.cfg, self.g, self.d, self.info = cfg, g, d, info
        self.ema = ema  # the average of G's weights (train.ema_decay), moved after each G update
        self.mel_input, self.mel_loss = mel_input, mel_loss
        # The family's arithmetic: G's input and each update's loss terms.
        self.objective = family_of(cfg).load_parts().objective(cfg, mel_input, mel_loss, info)
        self.phase, self.count = phase, count
        self.balancer = build_balancer(cfg, info)
        if self.balancer is not None and not hasattr(self.objective, "audio_term_weights"):
            raise ConfigError(f"loss.balancer: the {family_of(cfg).name} family's objective does not say which of "
                              "its terms are functions of the audio (audio_term_weights)")
        self.balancer_scales: dict[str, torch.Tensor] = {}  # the last micro-batch's, logged as balancer/<term>
        # D on real and generated audio apart (BatchNorm) or in one batch.
        self.separate_real_fake = bool(getattr(d.model, "separate_real_fake_calls", False))
        self.skips = SkipGuard(info, g.skips_on_device and d.skips_on_device)
        # What any rank asked for in the last step, as its agreement found: to stop; to validate
        # (its clock said so, ``log.val_every_minutes``).
        self.stop = self.validate = False

    @property
    def bad_terms(self) -> str:
        """Which loss terms were last not finite, and on which ranks."""
        return self.skips.bad_terms

    def __call__(self, waves: list[torch.Tensor], step: int, stop: bool = False,
                 validate: bool = False) -> tuple[Values, bool]:
        """Losses, gradient norms and loss scales of step ``step`` (device tensors), and whether an
        update was skipped, every rank agreeing; ``stop`` and ``validate``: whether this rank asks
        for them, agreed into ``self.stop`` and ``self.validate`` by the same collective (``skips.py``)."""
        train_d = step >= self.cfg.train.mel_only_steps
        # D-only warm-up after the mel-only one: G runs (no gradient) but neither trains nor steps.
        d_only = train_d and step < self.cfg.train.mel_only_steps + self.cfg.train.d_warmup_steps
        train_g = not d_only and (not train_d or step % self.cfg.train.d_steps_per_g == 0)
        inputs = [self.generator_input(w, step, i) for i, w in enumerate(waves)]
        self.skips.begin()
        shared_fakes = None
        if train_d:
            share = train_g and len(waves) == 1
            with self.phase("g_forward"), torch.set_grad_enabled(share):
                fakes = [self.generate(x) for x in inputs]
            with self.phase("d_update"):
                self.d_update(waves, fakes)
            shared_fakes = fakes if share else None
        if train_g:
            with self.phase("g_update"):
                self.g_update(waves, inputs, shared_fakes, adversarial=train_d)
            if self.ema is not None:
                with self.phase("ema"):
                    self.ema.update(self.skips.skipped("g"))
        with self.phase("stop_check"):
            values, skipped, agreed = self.skips.settle({"stop": stop, "validate": validate})
        self.stop, self.validate = agreed["stop"], agreed["validate"]
        # Each rank adds 1/world_size: the reduced total counts the update once.
        self.count({f"skipped_updates/{key}": 1.0 / self.info.world_size for key in skipped})
        for engine in (self.g, self.d):
            scale = engine.loss_scale()
            if scale is not None:
                values[f"loss_scale/{engine.name[0]}"] = scale
        return values, bool(skipped)

    def generator_input(self, wave: torch.Tensor, step: int, micro_batch: int):
        """G's input for the real batch ``wave`` (its log-mel, noise of the same batch size, or a
        codec's audio and codebook counts: a tuple is G's positional arguments)."""
        return self.objective.generator_input(wave, step, self.info.rank, micro_batch)

    def generate(self, x):
        """G's training forward on ``generator_input``'s output."""
        return self.g(*x) if isinstance(x, tuple) else self.g(x)

    def generated_audio(self, output):
        """The audio D judges in G's output (a codec's output holds its codes and VQ losses too)."""
        audio = getattr(self.objective, "generated_audio", None)
        return output if audio is None else audio(output)

    def _discriminate(self, forward: Callable, real: torch.Tensor, fake: torch.Tensor):
        """The D update's call: D on real and (detached) generated audio; returns (real_logits,
        fake_logits, real_feats, fake_feats).

        One call, also for spectral norm (MSD's first scale, and MPD/MRD with
        ``*_use_spectral_norm``): its power iteration advances once per training-mode forward, so
        HiFi-GAN's reference, which calls D on real and then on generated audio, judges the two with
        weights normalised by slightly different estimates of the top singular value (train-mode
        logits differ by ~5.6e-3 at that scale), and advances the estimate twice per half-step. The
        GAN losses compare D(real) with D(fake) as one function, which is what one set of weights
        evaluates; one power iteration per D update is what spectral norm prescribes (Miyato et al.
        2018), as the weights move little between updates. Separate calls when D has BatchNorm
        (``separate_real_fake``, the WaveGAN family): in one batch each clip would be normalised by
        the statistics of the real/generated mixture, which is known to change what a BatchNorm
        discriminator learns (it can tell the halves apart by their batch statistics).
        """
        if self.separate_real_fake:
            (real_logits, real_feats), (fake_logits, fake_feats) = forward(real.unsqueeze(1)), forward(fake)
            return real_logits, fake_logits, real_feats, fake_feats
        logits, feats = forward(torch.cat([real.unsqueeze(1), fake]))
        n = real.shape[0]
        return ([x[:n] for x in logits], [x[n:] for x in logits],
                [[f[:n] for f in fs] for fs in feats], [[f[n:] for f in fs] for fs in feats])

    def _finish(self, engine: ModelEngine, sums: dict[str, torch.Tensor], count: int) -> Values:
        """Step ``engine``; the logged losses are the means over the micro-batches."""
        values: Values = {name: total / count for name, total in sums.items()}
        result = engine.step()
        values[f"grad_norm/{engine.name[0]}"] = result.grad_norm
        self.skips.record(engine, values, result.skipped)
        return values

    def d_update(self, waves: list[torch.Tensor], fakes: list[torch.Tensor]) -> Values | None:
        """One discriminator update on real vs. generated (detached) audio; None if skipped."""
        sums: dict[str, torch.Tensor] = {}
        for i, (wave, fake) in enumerate(zip(waves, fakes, strict=True)):
            real_logits, fake_logits, _, _ = self._discriminate(self.d, wave, self.generated_audio(fake).detach())
            terms, total = self.objective.discriminator_terms(real_logits, fake_logits)
            loss = self.skips.guard(self.d, terms, total)
            if loss is None:
                return None
            terms["d/total"] = total
            with self.d.accumulating(last=i == len(waves) - 1):
                self.d.backward(loss)
            for name, value in terms.items():
                sums[name] = sums.get(name, 0) + value.detach()
        return self._finish(self.d, sums, len(waves))

    def g_update(self, waves: list[torch.Tensor], inputs: list[torch.Tensor],
                 fakes: list[torch.Tensor] | None, adversarial: bool) -> Values | None:
        """One generator update with the objective's terms (through the frozen D once
        ``adversarial``, i.e. after the mel-only warm-up); ``inputs``: G's inputs; ``fakes``: G's
        outputs when its forward is shared with the D half. None if skipped."""
        sums: dict[str, torch.Tensor] = {}
        frozen = self.d.frozen if adversarial else None
        for i, (wave, x) in enumerate(zip(waves, inputs, strict=True)):
            fake = fakes[i] if fakes is not None else self.generate(x)
            if self.balancer is not None:
                fake = fresh_output_node(fake)
            terms, total = self.objective.generator_terms(wave, fake, frozen)
            balanced = self.balanced_loss(fake, terms) if self.balancer is not None else total
            loss = self.skips.guard(self.g, terms, balanced)
            if loss is None:
                return None
            terms["g/total"] = total
            terms.update(self.balancer_scales)
            with self.g.accumulating(last=i == len(waves) - 1):
                self.g.backward(loss)
            for name, value in terms.items():
                sums[name] = sums.get(name, 0) + value.detach()
        return self._finish(self.g, sums, len(waves))

    def balanced_loss(self, output, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """The surrogate G backpropagates under ``loss.balancer``: its gradient at the generated
        audio is the balanced one; the objective's other terms join it as they are."""
        audio = self.generated_audio(output)
        balanced = self.balancer(terms, self.objective.audio_term_weights(), audio, self.d.repeat_backward)
        self.balancer_scales = {f"balancer/{name.removeprefix('g/')}": scale.detach()
                                for name, scale in balanced.scales.items()}
        return (audio * balanced.grad.detach()).sum() + self.objective.unbalanced_total(terms)

    def state_dict(self) -> dict:
        """What a resumed run needs of the step: the balancer's moving averages (the same on every rank)."""
        return {"balancer": self.balancer.state_dict()} if self.balancer is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.balancer is not None:
            self.balancer.load_state_dict(state.get("balancer", {}), self.info.device)


def fresh_output_node(output):
    """G's output with each tensor a new autograd node (a view of it), for the balancer's
    gradients to stop there. DeepSpeed (0.19.8) hooks the tensors its engine's forward returns
    (``register_output_backward_hooks``: a tensor, or inside a tuple, list or dict) to open its
    backward (and scale by 1 / gradient accumulation); a ``torch.autograd.grad`` w.r.t. such a
    tensor would fire the hook and run DeepSpeed's gradient reduction with no gradients (ZeRO-2:
    an IndexError). A gradient w.r.t. the view leaves the hooked tensor alone; the surrogate's
    backward goes through it as any loss does. Tensors inside a tuple (a codec's ``NamedTuple``),
    list or dict are viewed too."""
    if torch.is_tensor(output):
        return output.view_as(output) if output.requires_grad else output
    if isinstance(output, tuple) and hasattr(output, "_fields"):
        return type(output)(*(fresh_output_node(item) for item in output))
    if isinstance(output, tuple | list):
        return type(output)(fresh_output_node(item) for item in output)
    if isinstance(output, dict):
        return {key: fresh_output_node(value) for key, value in output.items()}
    return output


def build_balancer(cfg: Config, info: ProcessInfo) -> Balancer | None:
    """``loss.balancer``'s balancer (its norms averaged over the ranks when there are several), or None."""
    options = cfg.loss.balancer
    if not options.enabled:
        return None
    return Balancer(total_norm=options.total_norm, ema_decay=options.ema_decay, per_batch_item=options.per_batch_item,
                    epsilon=options.epsilon, rescale_grads=options.rescale_grads,
                    reducer=ProcessGroupReducer() if info.world_size > 1 else None)
