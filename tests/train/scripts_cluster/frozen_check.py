"""Does a D update leave G alone, and a G update leave D alone, under each launch mode?

Runs the two halves of the GAN step (``GANStep.d_update``, ``g_update``) by hand for two steps and
compares each model's full parameters (gathered under ZeRO-3) before and after each half. With the
model EMA (``train.ema_decay``) it first checks that ``ModelEMA.applied`` shows the full parameters
as the average the last checkpoint holds (ZeRO-3: the partitions written into and the persistent
parameters gathered again) and gives the weights back bit for bit.
Spectral-norm buffers are not weights (the power iteration updates them on every training-mode
forward), so only parameters count. Writes ``OUT/frozen-rank-N.json``.

``state_dump.py`` runs it after its training (``FROZEN_CHECK=OUT``), in the same processes, so the
tests of tests/train/test_deepspeed.py need no launch of their own for it; standalone, on a new
trainer::

    accelerate launch --config_file launch/cpu_zero2.yaml tests/train/scripts_cluster/frozen_check.py RUN OUT [KEY=VALUE ...]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from distgan.config import load_config
from distgan.train.engine import ModelEngine
from distgan.train.trainer import Trainer

TINY = Path(__file__).resolve().parents[3] / "configs" / "tiny.yaml"


def parameters(engine: ModelEngine) -> dict[str, torch.Tensor]:
    with engine.full_parameters() as model:
        return {name: p.detach().float().clone() for name, p in model.named_parameters()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[name], b[name]) for name in a)


def ema_check(trainer: Trainer) -> dict:
    """Right after ``fit`` (where validation would run: ZeRO-3's persistent parameters gathered):
    the full parameters inside ``applied``, then after it, against the last checkpoint's average
    and weights (the same as the live ones in fp32)."""
    if trainer.ema is None:
        return {}
    from distgan.checkpoint.ema import average_state_dict
    from distgan.checkpoint.format import latest_checkpoint
    from distgan.checkpoint.weights import generator_state_dict

    with trainer.ema.applied():
        inside = parameters(trainer.g)
    after = parameters(trainer.g)
    checkpoint = latest_checkpoint(trainer.run_dir)
    saved, weights = average_state_dict(checkpoint), generator_state_dict(checkpoint)
    return {"ema_applied_is_the_saved_average": same(saved, inside), "ema_applied_differs": not same(weights, inside),
            "ema_gives_the_weights_back": same(after, weights),
            "ema_bytes": trainer.ema.nbytes(), "g_parameters": sum(p.numel() for p in after.values())}


def check(trainer: Trainer, out: str | Path) -> None:
    """Two steps of the halves by hand on ``trainer``'s next batches; the report per rank in ``out``."""
    ema = ema_check(trainer)
    batches = trainer._batches()
    steps = []
    for _ in range(2):
        wave = next(batches)["audio"].to(trainer.info.device)
        mel = trainer.mel_input(wave)
        g0, d0 = parameters(trainer.g), parameters(trainer.d)
        fake = trainer.g(mel)
        assert trainer.gan_step.d_update([wave], [fake]) is not None
        g1, d1 = parameters(trainer.g), parameters(trainer.d)
        assert trainer.gan_step.g_update([wave], [mel], [fake], adversarial=True) is not None
        g2, d2 = parameters(trainer.g), parameters(trainer.d)
        steps.append({"d_update_changed_d": not same(d0, d1), "d_update_changed_g": not same(g0, g1),
                      "g_update_changed_g": not same(g1, g2), "g_update_changed_d": not same(d1, d2)})
    info = trainer.info
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / f"frozen-rank-{info.rank}.json").write_text(json.dumps(
        {"rank": info.rank, "world_size": info.world_size, "stage": info.deepspeed_stage, "steps": steps, "ema": ema}))


if __name__ == "__main__":
    check(Trainer(load_config(TINY, sys.argv[3:]), Path(sys.argv[1])), sys.argv[2])
    sys.stdout.flush()
    os._exit(0)  # as distgan's CLI does: no interpreter finalization under gloo (see distgan/cli.py)
