"""``distgan train``: load and check the config, then train in whatever launch mode is running.

The config, the run directory and the data it names are checked here (``train/preflight.py``),
before the trainer creates a process group, so a typo fails in seconds with the key's name
instead of after a cluster queue. Without ``--config``, a run directory that already holds a
``config.yaml`` resumes with it (what a requeued job does); a new one needs ``--config``.

Exit status: 0 when ``train.max_steps`` is reached; 75 (``REQUEUE_EXIT_CODE``) when a stop was
requested (signal, Ctrl-C or ``RUN_DIR/STOP``) and a checkpoint was written, so run it again; 2
for a config error (a corpus without a usable clip included), a run directory another job holds,
or a checkpoint this launch mode cannot load (it says which mode can); 3 from the watchdog; 4 when the run gave up after repeated non-finite losses (the last good
checkpoint stays); 5 when a checkpoint could not be written (a full disk); 6 when other ranks
were lost (a node died: ``train/peers.py`` names them); 7 when the run directory held
checkpoints and none can be resumed (each is named with its reason; ``--fresh-start`` starts
from step 0 instead: ``train/resume.py``); 130 after a second Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from distgan.cluster import REQUEUE_EXIT_CODE, request_requeue, slurm_job_id
from distgan.config import Config, ConfigError, load_config

USAGE_EXIT_CODE = 2
NON_FINITE_EXIT_CODE = 4
CHECKPOINT_WRITE_EXIT_CODE = 5
INTERRUPTED_EXIT_CODE = 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML recipe (configs/*.yaml); default: RUN_DIR/config.yaml if present")
    parser.add_argument("--run-dir", type=Path, required=True,
                        help="checkpoints, TensorBoard logs and the resolved config go here; "
                             "an existing run directory resumes from its newest complete checkpoint")
    parser.add_argument("--fresh-start", action="store_true",
                        help="when the run directory holds checkpoints and none can be resumed (all damaged), "
                             "start again from step 0 instead of refusing (exit 7)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="dotted overrides, e.g. train.max_steps=1000 data.shards=/data/ljs")


def resolve_config(config: Path | None, run_dir: Path, overrides: list[str]) -> Config:
    if config is None:
        if not (run_dir / "config.yaml").is_file():
            raise ConfigError(f"{run_dir} holds no config.yaml: a new run directory needs --config "
                              "(e.g. --config configs/tiny.yaml)")
        config = run_dir / "config.yaml"
    return load_config(config, overrides)


def _error(message: str, code: int, rank: str | None = None) -> int:
    where = f"[distgan] rank {rank}:" if rank is not None else "distgan train:"
    print(f"{where} {message}", file=sys.stderr, flush=True)
    return code


def main(args: argparse.Namespace) -> int:
    from distgan.train.preflight import check_run

    try:
        cfg = resolve_config(args.config, args.run_dir, args.overrides)
        check_run(cfg, args.run_dir)
    except ConfigError as err:
        return _error(f"config error: {err}", USAGE_EXIT_CODE)
    from distgan.checkpoint.format import CheckpointProblem
    from distgan.data.stream.skips import NoUsableAudio
    from distgan.train.checkpoint import CheckpointWriteError
    from distgan.train.lock import RunDirBusy
    from distgan.train.peers import PEERS_LOST_EXIT_CODE, PeersLost
    from distgan.train.resume import NO_CHECKPOINT_EXIT_CODE, NoCheckpointToResume
    from distgan.train.signals import StopRequest
    from distgan.train.trainer import NonFiniteError

    stop = StopRequest(args.run_dir)
    rank = os.environ.get("RANK", "0")  # every rank reports what ended it
    try:
        return _train(args, cfg, stop)
    except NoCheckpointToResume as err:
        return _error(str(err), NO_CHECKPOINT_EXIT_CODE, rank)
    except (ConfigError, RunDirBusy, CheckpointProblem, NoUsableAudio) as err:
        return _error(str(err), USAGE_EXIT_CODE, rank)
    except NonFiniteError as err:
        return _error(str(err), NON_FINITE_EXIT_CODE, rank)
    except CheckpointWriteError as err:
        return _error(str(err), CHECKPOINT_WRITE_EXIT_CODE, rank)
    except PeersLost as err:
        return _error(str(err), PEERS_LOST_EXIT_CODE, rank)
    except KeyboardInterrupt:
        return _error("interrupted (Ctrl-C twice): no checkpoint of the last steps", INTERRUPTED_EXIT_CODE, rank)


def _train(args: argparse.Namespace, cfg: Config, stop) -> int:
    from distgan.distributed import any_rank, barrier
    from distgan.train.peers import is_peer_failure
    from distgan.train.trainer import Trainer

    trainer = Trainer(cfg, args.run_dir, stop_requested=stop, job_id=slurm_job_id(), fresh_start=args.fresh_start)
    if trainer.info.is_main:
        stop.consume_stop_file()  # left by the stop that ended the previous job
    try:
        result = trainer.fit()
    except Exception as err:
        if trainer.info.world_size > 1 and is_peer_failure(err):
            raise trainer.roll_call.lost(err, trainer.state.step) from err
        raise
    if not result.stopped_early:
        if trainer.info.is_main:
            print(f"[distgan] done at step {result.state.step}; checkpoint: {result.last_checkpoint}")
        return 0
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
