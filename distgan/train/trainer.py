"""The GAN training loop around ``step.GANStep`` (a discriminator update, then a generator update).

Read top to bottom: ``Trainer.__init__`` builds or resumes everything, ``fit`` is the loop,
``train_step`` sets the learning rates and makes one step. The launch mode
(one process, DDP, DeepSpeed ZeRO-1/2/3) lives behind ``ModelEngine`` (``engine.py``); the data
position, RNG and counters live in ``TrainState`` and the checkpoint. Nothing here knows about
SLURM: a stop request (signal, stop file, time budget) is a callable the caller passes in, and
``TrainResult.stopped_early`` tells the caller a checkpoint was written before ``max_steps``.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from distgan import distributed
from distgan.checkpoint.files import HASH_NAME
from distgan.checkpoint.format import Checkpoint, complete_checkpoints, content_problem, open_checkpoint
from distgan.config import Config, dump_config
from distgan.data.stream import COUNTER_NAMES
from distgan.families import build_models, family_of, front_end
from distgan.losses.mel import MelSpectrogram
from distgan.train import corpus, resume
from distgan.train.checkpoint import (
    CheckpointWriter,
    check_weights,
    rng_state,
    set_rng_state,
    weight_fingerprint,
)
from distgan.train.ema import ModelEMA, applied
from distgan.train.engine import build_engines
from distgan.train.init_from import load_initial_weights
from distgan.train.lock import RunDirBusy, RunDirLock
from distgan.train.logger import COUNT_KEYS, MetricLogger, metric_keys, peak_memory_mb
from distgan.train.peers import RollCall
from distgan.train.position import TrainData, saved_batch_size
from distgan.train.schedule import learning_rate
from distgan.train.step import GANStep
from distgan.train.watchdog import Watchdog

# What the loop is doing, as the watchdog reports it; the keys are what a phase timer receives.
PHASES = {
    "step": "training step",
    "data": "waiting for data",
    "g_forward": "training step: generator forward",
    "d_update": "training step: discriminator update",
    "g_update": "training step: generator update",
    "ema": "training step: the average of the generator's weights",
    "log": "reducing metrics over ranks",
    "validation": "validation",
    "stop_check": "agreeing on skipped updates and a stop request",
    "checkpoint": "checkpoint",
}

PhaseTimer = Callable[[str], contextlib.AbstractContextManager]


@dataclass
class TrainState:
    """Everything besides the engines that a resumed run needs to continue the same curve."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of ``epoch`` already consumed on each rank
    batch_size: int = 0  # the data.batch_size batch_in_epoch counts in (0: a checkpoint's config says)
    consecutive_skips: int = 0
    lr_scale: float = 1.0  # lowered by each rollback after repeated non-finite losses
    counts: dict[str, float] = field(default_factory=dict)


class NonFiniteError(RuntimeError):
    """Too many consecutive updates had non-finite losses or gradients."""


@dataclass
class TrainResult:
    state: TrainState
    last_checkpoint: Path | None
    stopped_early: bool = False  # a stop was requested; a checkpoint was written before max_steps


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _never() -> bool:
    return False


def _untimed(phase: str) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


class Trainer:
    """``stop_requested`` is polled at every step boundary (the ranks agree on it); ``phase_timer``
    receives each phase of ``PHASES`` as it runs (``distgan bench step`` times them this way);
    ``job_id`` names the job in the run directory's lock, so that the same job, requeued, can take
    the lock over (``lock.py``). The lock is held from here to the end of ``fit``."""

    def __init__(self, cfg: Config, run_dir: Path, stop_requested: Callable[[], bool] = _never,
                 phase_timer: PhaseTimer = _untimed, job_id: str | None = None, fresh_start: bool = False) -> None:
        self.cfg, self.run_dir, self.stop_requested, self.phase_timer = cfg, Path(run_dir), stop_requested, phase_timer
        self.fresh_start = fresh_start  # start from step 0 when no checkpoint can be resumed (resume.py)
        # Same seed on every rank: both models start identical everywhere.
        seed_everything(cfg.train.seed)
        generator, discriminator = build_models(cfg)
        # Fine-tuning (train.init_from): weights into the plain modules, before any engine wraps them.
        self.initial = load_initial_weights(cfg, self.run_dir, generator, discriminator)
        self.g, self.d, self.info = build_engines(cfg, generator, discriminator)
        info = self.info
        mode = (f"DeepSpeed ZeRO-{info.deepspeed_stage}" if info.deepspeed_stage is not None
                else "DDP" if info.world_size > 1 else "single process")
        print(f"[distgan] rank {info.rank} of {info.world_size} (local rank {info.local_rank}) on {info.device}, "
              f"{mode}, precision {cfg.train.precision}", flush=True)
        # Names the lost ranks if a collective fails (train/peers.py).
        self.roll_call = RollCall(self.run_dir, info, cfg.faults.roll_call_seconds)
        self.lock = RunDirLock(self.run_dir, job_id)
        busy = None
        if info.is_main:
            try:
                self.lock.acquire()
            except RunDirBusy as err:
                busy = str(err)
        busy = distributed.broadcast_object(busy)
        if busy:
            raise RunDirBusy(busy)
        try:
            self._set_up()
        except BaseException:
            self.lock.release()
            raise

    def _set_up(self) -> None:
        cfg, info = self.cfg, self.info
        self.mel_input = front_end(cfg.model.generator, cfg.audio).to(info.device)
        self.mel_loss = MelSpectrogram.for_loss(cfg.audio).to(info.device)
        self.state = TrainState()
        self.ema = ModelEMA.configured(cfg.train.ema_decay, self.g)  # train.ema_decay: from the initial weights
        self.resumed_from: Checkpoint | None = None
        self.step_state: dict = {}  # GANStep's own state (the loss balancer's averages), as restored
        self._resume()
        if self.initial is not None and self.resumed_from is None:  # Adam moments go into the engines' optimizers
            self.initial.finish((self.g, self.d), info)
        self.corpus = corpus.corpus_spec(cfg, info)
        self.data = TrainData(cfg, info, self.corpus, self.state)
        self.batches_per_epoch = self.data.batches_per_epoch
        if info.is_main:  # only once the config was found to work with the checkpoint and the data
            (self.run_dir / "config.yaml").write_text(dump_config(cfg))
        clips = corpus.validation_clips(cfg, info, self.corpus)
        self.validator = family_of(cfg).load_parts().validator(cfg, info, clips, self.mel_input, self.mel_loss)
        keys = metric_keys(family_of(cfg).extra_terms, loss_scales=cfg.train.precision == "fp16",
                           balanced=cfg.loss.balancer.enabled)
        self.logger = MetricLogger(self.run_dir, info, keys, COUNT_KEYS, self.state.counts,
                                   resumed_at=self.state.step if self.resumed_from else None)
        self.checkpoints = CheckpointWriter(self.run_dir, info, cfg.checkpoint.keep_last,
                                            last_good=self.resumed_from.path if self.resumed_from else None)
        self.watchdog = Watchdog(cfg.faults.watchdog_minutes, info.rank, self.run_dir / "logs")
        self.gan_step = GANStep(cfg, self.g, self.d, info, self.mel_input, self.mel_loss, self._phase,
                                self.logger.count, self.ema)
        self.gan_step.load_state_dict(self.step_state)
        distributed.barrier()  # every rank is set up before any of them polls for a stop

    @contextlib.contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        self.watchdog.beat(PHASES[name], self.state.step)
        with self.phase_timer(name):
            yield

    # ------------------------------------------------------------------------------------------
    def _resume(self) -> None:
        """Restore the newest checkpoint whose files verify and load; pass over (and move aside)
        the others, every rank agreeing on each verdict; refuse to start afresh unasked
        (``resume.py``)."""
        report = print if self.info.is_main else _quiet
        loaded_any, passed_over = False, []

        def note(line: str) -> None:  # an incomplete folder, reported by complete_checkpoints
            report(line)
            passed_over.append(line.removeprefix("[distgan] ignoring "))

        held_checkpoints = resume.had_checkpoints(self.run_dir)
        for checkpoint in complete_checkpoints(self.run_dir, note):
            wrong_mode = resume.launch_mode_problem(checkpoint, self.info.deepspeed_stage, self.info.world_size,
                                                    self.run_dir)
            if wrong_mode is not None:
                raise wrong_mode  # intact: neither loaded nor moved
            # Every rank checks its share of the files' digests before anything is loaded, and that
            # DeepSpeed's files unpickle safely (DeepSpeed's loading has collectives: a rank that
            # failed inside it would leave the others waiting). The rest fail safely in _restore.
            share = sorted(checkpoint.files)[self.info.rank::self.info.world_size]
            problem = distributed.problems_anywhere(content_problem(checkpoint, share, unpickle_check="deepspeed"))
            if problem is None:
                loaded_any = True
                problem = distributed.problems_anywhere(self._attempt(lambda c=checkpoint: self._restore(c)))
            if problem is None:
                return
            report(f"[distgan] passing over checkpoint {checkpoint.path}: {problem}")
            reason = problem.replace(f"{checkpoint.path}: ", "")
            passed_over.append(f"{checkpoint.path.name} (rejected: {reason})")
            if self.info.is_main:
                resume.reject(checkpoint.path, reason, report)
            distributed.barrier()
        if loaded_any or (held_checkpoints and not self.fresh_start):
            raise resume.refusal(self.run_dir, passed_over, loaded_any, self.fresh_start)
        if held_checkpoints:
            listed = resume.listing(self.run_dir, passed_over)
            report(f"[distgan] {resume.FRESH_START_OPTION}: no checkpoint can be resumed ({listed}); starting again "
                   "from step 0 (the rejected ones stay in checkpoints/)")

    @staticmethod
    def _attempt(action: Callable[[], None]) -> str | None:
        try:
            action()
        except (ValueError, RuntimeError, OSError, KeyError, TypeError) as err:
            return f"{type(err).__name__}: {err}"
        return None

    def _restore(self, checkpoint: Checkpoint, announce: bool = True) -> None:
        for engine in (self.g, self.d):
            engine.load(checkpoint.path / engine.name, checkpoint.world_size)
        check_weights((self.g, self.d), checkpoint)
        if self.ema is not None:
            self.ema.restore(checkpoint, print if self.info.is_main else _quiet)
        saved = checkpoint.trainer_state()
        self.state = TrainState(**saved["state"])
        self.step_state = saved.get("gan_step", {})
        self.state.batch_size = self.state.batch_size or saved_batch_size(checkpoint, self.cfg.data.batch_size)
        same_world = saved["world_size"] == self.info.world_size
        if not same_world:
            # Each rank's share of an epoch depends on the world size: restart the epoch's order.
            self.state.batch_in_epoch = 0
            if self.info.is_main:
                print(f"[distgan] world size changed {saved['world_size']} -> {self.info.world_size}: "
                      f"epoch {self.state.epoch} restarts from its first batch")
        rank_state = checkpoint.rank_state(self.info.rank)
        if rank_state is not None and same_world:
            set_rng_state(rank_state["rng"])
        self.resumed_from = checkpoint
        if self.info.is_main and announce:
            print(f"[distgan] resumed from {checkpoint.path} (step {self.state.step})")

    def _batches(self) -> Iterator[dict]:
        return self.data.batches()  # the data position advances as each batch is taken (position.py)

    # ------------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        max_steps = self.cfg.train.max_steps
        bar = (tqdm(total=max_steps, initial=self.state.step, dynamic_ncols=True, desc="train")
               if self.info.is_main and self.cfg.log.progress_bar else None)
        last_checkpoint = self.resumed_from.path if self.resumed_from else None
        stop = False
        batches = self._batches()
        try:
            if self.state.step == 0 and self.validator.validates_at_start:
                with self._phase("validation"), applied(self.ema):  # val/* are the average's
                    self.validator.run(self.g, self.logger, 0)
            while self.state.step < max_steps and not stop:
                with self._phase("step"):
                    if not self._step(batches):
                        batches = self._batches()  # rolled back: the restored data position
                        continue
                    stop = self.gan_step.stop  # polled and agreed at the end of the step (skips.py)
                    self._log_and_validate(bar, last=stop or self.state.step >= max_steps)
                    last_checkpoint = self._maybe_checkpoint(stop) or last_checkpoint
            if last_checkpoint is None or self.state.step == 0:
                last_checkpoint = self.save_checkpoint()
        finally:
            self.watchdog.close()
            if bar is not None:
                bar.close()
            self.logger.close()
            self.data.close()
            self.lock.release()
        return TrainResult(self.state, last_checkpoint, stopped_early=stop and self.state.step < max_steps)

    def _step(self, batches: Iterator[dict]) -> bool:
        """Take the batches and make one step; False when it ended in a rollback."""
        cfg = self.cfg
        start = time.perf_counter()
        with self._phase("data"):
            micro_batches = [next(batches) for _ in range(cfg.train.grad_accum)]
        data_time = time.perf_counter() - start
        values = self.train_step(micro_batches)
        step_time = time.perf_counter() - start
        self.state.step += 1
        samples = sum(b["audio"].shape[0] for b in micro_batches)
        values.update({
            "perf/steps_per_second": 1.0 / step_time,
            "perf/audio_seconds_per_second": samples * cfg.data.segment_samples / cfg.audio.sample_rate / step_time,
            "perf/data_wait_fraction": data_time / step_time,
        })
        self.logger.add(values)
        skips = sum(b["skips"] for b in micro_batches).numpy()  # the loader's host counters: no device read
        self.logger.count({f"data_skips/{r}": float(n) for r, n in zip(COUNTER_NAMES, skips, strict=True)})
        if self.state.consecutive_skips >= cfg.faults.max_consecutive_skips:
            self._handle_divergence(self.state.step)
            return False
        return True

    def _log_and_validate(self, bar: tqdm | None, last: bool) -> None:
        """Log every ``log.every_steps`` and at a run's ``last`` step, validate when due, so that
        what a run ends with (its final checkpoint, the demo's sample files) is in TensorBoard at
        the same step."""
        step, log = self.state.step, self.cfg.log
        if step % log.every_steps == 0 or last:
            self.logger.add({"perf/peak_memory_mb": peak_memory_mb(self.info.device)})
            with self._phase("log"):
                reduced = self.logger.reduce(step)
            self.logger.scalars(step, reduced)
            if bar is not None:
                shown = {"d/total": "d_loss", "g/mel": "mel_l1", "perf/audio_seconds_per_second": "audio_s/s"}
                bar.set_postfix({label: f"{reduced[key]:.3g}" for key, label in shown.items() if key in reduced})
        # A run bounded by the clock (the demo) also validates at its last step, which no step count names.
        if self.validator.due(step, self.gan_step.validate or (last and log.val_every_minutes > 0)):
            with self._phase("validation"), applied(self.ema):
                self.validator.run(self.g, self.logger, step)
        if bar is not None:
            bar.update(1)

    def _maybe_checkpoint(self, stop: bool) -> Path | None:
        step = self.state.step
        every = self.cfg.checkpoint.every_steps
        due = (every and step % every == 0) or stop or step == self.cfg.train.max_steps
        # Never checkpoint inside a streak of non-finite updates: the weights may be bad, and
        # the last good checkpoint is what a rollback or a restart needs.
        if not due or self.state.consecutive_skips:
            return None
        with self._phase("checkpoint"):
            return self.save_checkpoint()

    def _handle_divergence(self, step: int) -> None:
        """After too many consecutive non-finite updates: roll back with a lower LR, or stop."""
        factor = self.cfg.faults.rollback_lr_factor
        last_good = self.checkpoints.last_good
        checkpoint = open_checkpoint(last_good) if last_good is not None else None
        message = (f"{self.state.consecutive_skips} consecutive updates skipped for non-finite values, "
                   f"last at step {step} in {self.gan_step.bad_terms}")
        if factor is None or checkpoint is None:
            where = f"; last good checkpoint: {checkpoint.path}" if checkpoint else ""
            raise NonFiniteError(f"stopping: {message}{where}")
        lr_scale = self.state.lr_scale * factor
        if self.info.is_main:
            print(f"[distgan] {message}: rolling back to {checkpoint.path}, learning rates x{lr_scale:g}")
        self._restore(checkpoint, announce=False)
        self.gan_step.load_state_dict(self.step_state)
        self.logger.discard_pending()  # the abandoned steps' values; their counts stay
        self.state.lr_scale = lr_scale
        self.state.consecutive_skips = 0
        self.data.close()
        self.data = TrainData(self.cfg, self.info, self.corpus, self.state)

    # ------------------------------------------------------------------------------------------
    def train_step(self, micro_batches: list[dict]) -> dict[str, torch.Tensor | float]:
        """One step on ``train.grad_accum`` batches at the scheduled learning rates (``step.py``)."""
        values: dict[str, torch.Tensor | float] = {}
        train, step = self.cfg.train, self.state.step
        for engine, optim in ((self.g, self.cfg.optim.generator), (self.d, self.cfg.optim.discriminator)):
            lr = learning_rate(optim, step, self.batches_per_epoch, train.grad_accum, train.max_steps)
            engine.set_lr(lr * self.state.lr_scale)
            values[f"lr/{engine.name[0]}"] = lr * self.state.lr_scale
        waves = [b["audio"].to(self.info.device, non_blocking=True) for b in micro_batches]
        # This rank's stop request and validation clock, agreed at the end of the step (skips.py).
        step_values, skipped = self.gan_step(waves, self.state.step, self.stop_requested(),
                                             self.validator.clock_due())
        self.state.consecutive_skips = self.state.consecutive_skips + 1 if skipped else 0
        return values | step_values

    # ------------------------------------------------------------------------------------------
    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint of this step; None (and a message) when some weights are not finite."""
        for engine in (self.g, self.d):
            engine.settle_running_stats()  # dist.batchnorm=local: the ranks' mean (sync_batchnorm.py)
        digests, non_finite = weight_fingerprint((self.g, self.d))
        if distributed.any_rank(bool(non_finite), self.info.device):
            if self.info.is_main:
                print(f"[distgan] step {self.state.step}: not writing a checkpoint, the weights are not finite "
                      f"({', '.join(non_finite[:3]) or 'on another rank'})")
            return None
        self.state.counts = dict(self.logger.totals)
        trainer_state = {"state": asdict(self.state), "world_size": self.info.world_size,
                         "deepspeed_stage": self.info.deepspeed_stage, "gan_step": self.gan_step.state_dict()}
        rank_state = {"rng": rng_state(), "weights": digests, "weights_hash": HASH_NAME, "step": self.state.step}
        return self.checkpoints.save(self.state.step, (self.g, self.d), trainer_state, rank_state,
                                     dump_config(self.cfg), ema=self.ema)


def _quiet(_: str) -> None:
    pass
