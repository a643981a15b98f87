"""``distgan train``: load and check the config, then train in whatever launch mode is running.

The config is fully validated here, before the trainer creates a process group, so a typo fails
in seconds with the key's name instead of after a cluster queue. Without ``--config``, a run
directory that already holds a ``config.yaml`` resumes with it (what a requeued job does).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from distgan.config import Config, ConfigError, load_config


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
    from distgan.train.trainer import Trainer

    trainer = Trainer(cfg, args.run_dir)
    result = trainer.fit()
    if trainer.info.is_main:
        print(f"[distgan] step {result.state.step}; checkpoint: {result.last_checkpoint}")
    return 0
