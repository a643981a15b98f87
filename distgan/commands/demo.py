"""``distgan demo``: the whole job on the built-in corpus, in a few minutes on any machine.

It trains ``configs/tiny.yaml`` (on the synthetic corpus, or on shards given with ``--data``)
until the time budget or the step budget runs out, then writes a few generated wav files next
to the TensorBoard logs and says how to look at them. Running it again on the same run
directory continues the same run. How many steps fit in the budget depends on the machine, so
validation (audio and mel images in TensorBoard) runs by the clock: at least three times in
any budget (``log.val_every_minutes``; an override on the command line wins), and once more at
the last step, the one the sample files are named after. Scalars are logged every step.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import soundfile

from distgan.config import ConfigError, load_config

RECIPES = Path(__file__).resolve().parents[2] / "configs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", type=Path, default=Path("runs/demo"),
                        help="where the run goes; an existing one continues (default: %(default)s)")
    parser.add_argument("--minutes", type=float, default=3.0,
                        help="wall-clock training budget (default: %(default)s)")
    parser.add_argument("--data", default=None,
                        help="shards folder (from `distgan prepare`); default: the built-in synthetic corpus")
    parser.add_argument("--config", type=Path, default=RECIPES / "tiny.yaml",
                        help="recipe to train (default: configs/tiny.yaml, 2 CPU cores)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")


VALIDATIONS_PER_BUDGET = 3.5  # at least three fit, whatever a step costs on this machine


def main(args: argparse.Namespace) -> int:
    every = args.minutes / VALIDATIONS_PER_BUDGET
    # Every step logged: a few hundred steps in the budget draw curves, not tiny.yaml's two points.
    overrides = [f"log.val_every_minutes={every:g}", "log.val_every_steps=0", "log.every_steps=1", *args.overrides,
                 *([f"data.shards={args.data}"] if args.data else [])]
    if not args.config.is_file():
        print(f"distgan demo: recipe not found: {args.config} (run from a checkout of distgan, "
              "or pass --config)")
        return 2
    from distgan.checkpoint.format import CheckpointProblem
    from distgan.train.lock import RunDirBusy
    from distgan.train.preflight import check_run
    from distgan.train.trainer import Trainer

    print(f"distgan demo: training {args.config.name} for {args.minutes:g} min on "
          f"{args.data or 'the built-in synthetic corpus'}, into {args.run_dir}. Every {every * 60:.0f} s,\n"
          f"generated audio and mel images go to TensorBoard; watch them meanwhile with\n"
          f"  tensorboard --logdir {args.run_dir.parent}    (the run is \"{args.run_dir.name}/tensorboard\")",
          flush=True)
    deadline = [float("inf")]  # the budget is training time: it starts once the trainer is set up
    try:
        cfg = load_config(args.config, overrides)
        check_run(cfg, args.run_dir)
        trainer = Trainer(cfg, args.run_dir, stop_requested=lambda: time.monotonic() > deadline[0])
    except (ConfigError, RunDirBusy, CheckpointProblem) as err:
        print(f"distgan demo: {err}")
        return 2
    deadline[0] = time.monotonic() + args.minutes * 60
    result = trainer.fit()
    fakes = trainer.validator.generate(trainer.g)
    if not trainer.info.is_main:
        return 0
    samples = args.run_dir / "samples"
    samples.mkdir(parents=True, exist_ok=True)
    written = []
    for clip, fake in zip(trainer.validator.clips, fakes, strict=True):
        for kind, wave in (("real", clip["audio"]), (f"generated-step{result.state.step}", fake)):
            path = samples / f"{clip['key']}-{kind}.wav"
            soundfile.write(path, wave.clamp(-1, 1).numpy(), cfg.audio.sample_rate, subtype="PCM_16")
            written.append(path)
    print(f"\ndistgan demo: trained {result.state.step} steps; checkpoint {result.last_checkpoint}")
    print("audio samples:")
    for path in written:
        print(f"  {path}")
    print(f"watch it:   tensorboard --logdir {args.run_dir.parent}")
    print(f"continue:   distgan demo --run-dir {args.run_dir} --minutes {args.minutes:g}")
    return 0
