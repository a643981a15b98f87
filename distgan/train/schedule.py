"""Learning rate as a pure function of the step.

The loop sets each optimizer's learning rate from this every step instead of stepping a
scheduler object: nothing to keep in sync across ranks or world sizes (an Accelerate-wrapped
scheduler steps once per process per call), and a resumed run recomputes exactly the same value.
HiFi-GAN's "decay 0.999 per epoch" is ``lr_decay_every: epoch``, where an epoch is one pass of
every rank over its share of the shards (``batches_per_epoch`` batches; with gradient
accumulation a step takes ``batches_per_step`` of them, so an epoch is fewer steps).
"""

from __future__ import annotations

import math

from distgan.config import OptimizerConfig


def learning_rate(optim: OptimizerConfig, step: int, batches_per_epoch: int, batches_per_step: int = 1,
                  max_steps: int = 0) -> float:
    """Learning rate for the update made at ``step`` (0-based): decayed once per epoch completed
    before the step's first batch (or once per step), or along a half cosine that reaches 0 at
    ``max_steps`` (``optim.schedule: cosine``), after a linear warm-up."""
    warmup = min(1.0, (step + 1) / optim.warmup_steps) if optim.warmup_steps > 0 else 1.0
    if optim.schedule == "cosine":
        if step < optim.warmup_steps:
            return optim.lr * warmup
        progress = (step - optim.warmup_steps) / max(1, max_steps - optim.warmup_steps)
        return optim.lr * max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    per_epoch = optim.lr_decay_every == "epoch"
    decays = step * batches_per_step // max(1, batches_per_epoch) if per_epoch else step
    return optim.lr * warmup * optim.lr_decay**decays
