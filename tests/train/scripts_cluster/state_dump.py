"""``distgan train`` that also writes each model's whole training state when it resumes and when
it saves, for the tests of resuming on another world size.

Started like ``python -m distgan`` (directly or under a launcher), with ``STATE_DUMP`` naming a
folder. Rank 0 writes ``{restored,saved}-step-N-ranks-W.pt``: per model and parameter the fp32
master weight and Adam's two moments, gathered whole from every rank (DeepSpeed's
``safe_get_full_*``, collectives that every rank joins), the buffers, and the optimizer's step
counts, and the model EMA's average (``train.ema_decay``) assembled from every rank's share. With ``FROZEN_CHECK`` naming a folder as well, the run then checks that each half of the
GAN step updates only its own model (``frozen_check.py``), after its last checkpoint.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from distgan.cli import main
from distgan.train.trainer import Trainer


def whole_state(engine) -> dict:
    model, optimizer = engine.model, engine.optimizer
    params: dict[str, dict[str, torch.Tensor]] = {}
    deepspeed = hasattr(engine, "engine")
    if deepspeed:
        from deepspeed.utils import safe_get_full_fp32_param, safe_get_full_optimizer_state
    for name, param in model.named_parameters():
        if deepspeed:
            params[name] = {"fp32": safe_get_full_fp32_param(param),
                            **{key: safe_get_full_optimizer_state(param, key) for key in ("exp_avg", "exp_avg_sq")}}
        else:
            state = optimizer.state[param]
            params[name] = {"fp32": param.detach(), "exp_avg": state["exp_avg"], "exp_avg_sq": state["exp_avg_sq"]}
        params[name] = {key: value.detach().float().cpu().clone() for key, value in params[name].items()}
    base = optimizer.optimizer if deepspeed else optimizer
    steps = sorted({float(state["step"]) for state in base.state.values() if "step" in state})
    buffers = {name: buffer.detach().float().cpu().clone() for name, buffer in model.named_buffers()}
    return {"params": params, "buffers": buffers, "optimizer_steps": steps}


def whole_average(trainer: Trainer) -> dict[str, torch.Tensor] | None:
    """The EMA's whole average: every rank's share gathered (a collective), ZeRO-3's assembled."""
    if trainer.ema is None:
        return None
    from distgan import distributed
    from distgan.checkpoint.ema import assemble

    shares = distributed.all_gather_object({name: t.cpu() for name, t in trainer.ema.average.items()})
    if trainer.g.partition() is None:
        return shares[0]
    return assemble([{"partition": share, "shapes": trainer.g.parameter_shapes()} for share in shares])


def dump(trainer: Trainer, event: str) -> None:
    state = {engine.name: whole_state(engine) for engine in (trainer.g, trainer.d)}
    state["ema"] = whole_average(trainer)
    if trainer.info.is_main:
        folder = Path(os.environ["STATE_DUMP"])
        folder.mkdir(parents=True, exist_ok=True)
        state["step"] = trainer.state.step
        torch.save(state, folder / f"{event}-step-{trainer.state.step}-ranks-{trainer.info.world_size}.pt")


def install() -> None:
    restore, save = Trainer._restore, Trainer.save_checkpoint

    def dumping_restore(trainer: Trainer, *args, **kwargs):
        restore(trainer, *args, **kwargs)
        dump(trainer, "restored")

    def dumping_save(trainer: Trainer, *args, **kwargs):
        path = save(trainer, *args, **kwargs)
        dump(trainer, "saved")
        return path

    Trainer._restore, Trainer.save_checkpoint = dumping_restore, dumping_save
    if os.environ.get("FROZEN_CHECK"):
        from frozen_check import check  # beside this script

        fit = Trainer.fit

        def fit_then_check(trainer: Trainer):
            result = fit(trainer)
            check(trainer, os.environ["FROZEN_CHECK"])
            return result

        Trainer.fit = fit_then_check


if __name__ == "__main__":
    install()
    sys.exit(main(sys.argv[1:]))
