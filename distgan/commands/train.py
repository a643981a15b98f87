"""``distgan train``: load and check the config, then train in whatever launch mode is running.

The config is fully validated here, before the trainer creates a process group, so a typo fails
in seconds with the key's name instead of after a cluster queue. Without ``--config``, a run
directory that already holds a ``config.yaml`` resumes with it (what a requeued job does).

Exit status: 0 when ``train.max_steps`` is reached; 75 (``REQUEUE_EXIT_CODE``) when a stop was
requested (signal or ``RUN_DIR/STOP``) and a checkpoint was written, so run it again; 2 for a
config error; 4 when the run gave up after repeated non-finite losses (the last good checkpoint
stays); 3 from the watchdog.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from distgan.cluster import REQUEUE_EXIT_CODE, request_requeue
from distgan.config import Config, ConfigError, load_config

NON_FINITE_EXIT_CODE = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML recipe (configs/*.yaml); default: RUN_DIR/config.yaml if present")
    parser.add_argument("--run-dir", type=Path, required=True,
                        help="checkpoints, TensorBoard logs and the resolved config go here; "
                             "an existing run directory resumes from its newest complete checkpoint")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="dotted overrides, e.g. train.max_steps=1000 data.shards=/data/ljs")


def resolve_config(config: Path | None, run_dir: Path, overrides: list[str]) -> Config:
    if config is None and (run_dir / "config.yaml").is_file():
        config = run_dir / "config.yaml"
    return load_config(config, overrides)


def main(args: argparse.Namespace) -> int:
    try:
        cfg = resolve_config(args.config, args.run_dir, args.overrides)
    except ConfigError as err:
        print(f"distgan train: config error: {err}", file=sys.stderr)
        return 2
    from distgan.train.signals import StopRequest
    from distgan.train.trainer import NonFiniteError, Trainer

    stop = StopRequest(args.run_dir)
    if int(os.environ.get("RANK", "0")) == 0:
        stop.consume_stop_file()  # left by the stop that ended the previous job
    trainer = Trainer(cfg, args.run_dir, stop_requested=stop)
    try:
        result = trainer.fit()
    except NonFiniteError as err:
        print(f"[distgan] rank {trainer.info.rank}: {err}", file=sys.stderr)
        return NON_FINITE_EXIT_CODE
    if not result.stopped_early:
        if trainer.info.is_main:
            print(f"[distgan] done at step {result.state.step}; checkpoint: {result.last_checkpoint}")
        return 0
    from distgan.distributed import any_rank, barrier

    # A signal may have reached only some ranks: requeue if any of them was asked to.
    wants_requeue = any_rank(stop.wants_requeue, trainer.info.device)
    if trainer.info.is_main:
        reason = stop.describe() if stop() else "stop requested on another rank"
        if wants_requeue:
            request_requeue(args.run_dir, result.state.step, reason)
        stop.consume_stop_file()
        print(f"[distgan] stopped at step {result.state.step} ({reason}); checkpoint: {result.last_checkpoint}")
    # Exit together, after rank 0 has requeued: a rank (and its launcher) exiting first with a
    # non-zero status makes srun --kill-on-bad-exit, or torchrun's agent, stop rank 0 meanwhile.
    barrier()
    return REQUEUE_EXIT_CODE
