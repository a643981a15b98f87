"""What the families' reference-step tests share: distgan's step and the original's on the same weights."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from distgan.config import Config
from distgan.families import build_models as build_distgan_models
from distgan.families import front_end
from distgan.losses.mel import MelSpectrogram
from distgan.train.engine import build_engines
from distgan.train.step import GANStep


def steps_on_the_same_weights(cfg: Config) -> tuple[GANStep, Any]:
    """(distgan's ``GANStep``, the family's original step), distgan's models given the original's weights
    as ``bench step --baseline reference`` gives them (``distgan.bench.reference_step``)."""
    from distgan.bench.reference_step import build_models, copy_weights_into, reference_hooks

    torch.manual_seed(0)
    generator, discriminator = build_distgan_models(cfg)
    reference_g, reference_d = build_models(cfg)
    copy_weights_into(generator, discriminator, reference_g, reference_d)
    g, d, info = build_engines(cfg, generator, discriminator)
    ours = GANStep(cfg, g, d, info, front_end(cfg.model.generator, cfg.audio), MelSpectrogram.for_loss(cfg.audio),
                   lambda _: contextlib.nullcontext(), lambda _: None)
    return ours, reference_hooks(cfg).step_class(cfg, reference_g, reference_d, torch.device("cpu"))
