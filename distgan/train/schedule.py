"""Learning rate as a pure function of the step.

The loop sets each optimizer's learning rate from this every step instead of stepping a
scheduler object: nothing to keep in sync across ranks or world sizes (an Accelerate-wrapped
scheduler steps once per process per call), and a resumed run recomputes exactly the same value.
HiFi-GAN's "decay 0.999 per epoch" is ``lr_decay_every: epoch``, where an epoch is one pass of
every rank over its share of the shards (``batches_per_epoch`` steps).
"""

from __future__ import annotations

from distgan.config import OptimizerConfig


def learning_rate(optim: OptimizerConfig, step: int, batches_per_epoch: int) -> float:
    """Learning rate for the update made at ``step`` (0-based)."""
    warmup = min(1.0, (step + 1) / optim.warmup_steps) if optim.warmup_steps > 0 else 1.0
    decays = step // max(1, batches_per_epoch) if optim.lr_decay_every == "epoch" else step
    return optim.lr * warmup * optim.lr_decay**decays
