"""The GAN training loop: a discriminator update, then a generator update with D frozen.

Read top to bottom: ``Trainer.__init__`` builds or resumes everything, ``fit`` is the loop,
``d_update`` and ``g_update`` are the two halves of a step. Launch mode (one process, DDP,
DeepSpeed ZeRO-1/2/3) lives behind ``ModelEngine``; the data position, RNG and counters live in
``TrainState`` and the checkpoint. Nothing here knows about SLURM: a stop request (signal) is an
input, and the caller turns ``TrainResult.requeue`` into an exit status.
"""

from __future__ import annotations

import hashlib
import random
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from distgan import losses
from distgan.config import Config, dump_config
from distgan.data.stream import COUNTER_NAMES
from distgan.mel import MelSpectrogram
from distgan.models.discriminators import Discriminators
from distgan.models.generator import HiFiGANGenerator
from distgan.train import data as train_data
from distgan.train import distributed
from distgan.train.checkpoint import Checkpoint, CheckpointWriter, latest_checkpoint, rng_state, set_rng_state
from distgan.train.engine import ModelEngine, build_engines
from distgan.train.metrics import MetricLogger
from distgan.train.schedule import learning_rate
from distgan.train.validation import Validator
from distgan.train.watchdog import Watchdog

LOSS_KEYS = ["d/real", "d/fake", "d/total", "g/adv", "g/fm", "g/mel", "g/total"]
COUNT_KEYS = ["skipped_updates/d", "skipped_updates/g"] + [f"data_skips/{r}" for r in COUNTER_NAMES]


@dataclass
class TrainState:
    """Everything besides the engines that a resumed run needs to continue the same curve."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of ``epoch`` already consumed on each rank
    consecutive_skips: int = 0
    lr_scale: float = 1.0  # lowered by each rollback after repeated non-finite losses
    counts: dict[str, float] = field(default_factory=dict)


class NonFiniteError(RuntimeError):
    """Too many consecutive updates had non-finite losses or gradients."""


@dataclass
class TrainResult:
    state: TrainState
    last_checkpoint: Path | None
    requeue: bool = False  # stopped early on request, after a checkpoint


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class Trainer:
    def __init__(self, cfg: Config, run_dir: Path) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        # Same seed on every rank: both models start identical everywhere.
        seed_everything(cfg.train.seed)
        generator = HiFiGANGenerator(cfg.model.generator, n_mels=cfg.audio.n_mels)
        discriminator = Discriminators(cfg.model.discriminator)
        self.g, self.d, self.info = build_engines(cfg, generator, discriminator)
        device = self.info.device
        info = self.info
        mode = (f"DeepSpeed ZeRO-{info.deepspeed_stage}" if info.deepspeed_stage is not None
                else "DDP" if info.world_size > 1 else "single process")
        print(f"[distgan] rank {info.rank} of {info.world_size} (local rank {info.local_rank}) on {device}, "
              f"{mode}, precision {cfg.train.precision}", flush=True)
        self.mel_input = MelSpectrogram(cfg.audio).to(device)
        self.mel_loss = MelSpectrogram.for_loss(cfg.audio).to(device)

        self.state = TrainState()
        self.resumed_from: Checkpoint | None = None
        checkpoint = latest_checkpoint(self.run_dir, self.info.world_size,
                                       report=print if self.info.is_main else lambda _: None)
        if checkpoint is not None:
            self._restore(checkpoint)
        if self.info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(dump_config(cfg))

        spec = train_data.corpus_spec(cfg, self.info)
        self.data = train_data.train_loader(cfg, self.info, spec, self.state.epoch, self.state.batch_in_epoch)
        self.batches_per_epoch = self.data.batches_per_epoch
        self.validator = Validator(cfg, self.info, train_data.validation_clips(cfg, self.info, spec),
                                   self.mel_input, self.mel_loss)
        keys = LOSS_KEYS + ["grad_norm/g", "grad_norm/d", "lr/g", "lr/d", "perf/steps_per_second",
                            "perf/audio_seconds_per_second", "perf/data_wait_fraction",
                            "perf/peak_memory_mb"]
        if cfg.train.precision == "fp16":
            keys += ["loss_scale/g", "loss_scale/d"]
        self.logger = MetricLogger(self.run_dir, self.info, keys, COUNT_KEYS, self.state.counts,
                                   resumed_at=self.state.step if self.resumed_from else None)
        self.checkpoints = CheckpointWriter(self.run_dir, self.info, cfg.checkpoint.keep_last)
        self.stop_requested = lambda: False  # replaced by the caller (signals) when wanted
        self.watchdog = Watchdog(cfg.faults.watchdog_minutes, self.info.rank, self.run_dir / "logs")
        self._bad_term = ""
        distributed.barrier()  # every rank is set up before any of them polls for a stop

    # ------------------------------------------------------------------------------------------
    def _restore(self, checkpoint: Checkpoint, announce: bool = True) -> None:
        for engine in (self.g, self.d):
            engine.load(checkpoint.path / engine.name)
        saved = checkpoint.trainer_state()
        self.state = TrainState(**saved["state"])
        if saved["world_size"] != self.info.world_size:
            # Each rank's share of an epoch depends on the world size: restart the epoch's order.
            self.state.batch_in_epoch = 0
            if self.info.is_main:
                print(f"[distgan] world size changed {saved['world_size']} -> {self.info.world_size}: "
                      f"epoch {self.state.epoch} restarts from its first batch")
        rank_state = checkpoint.rank_state(self.info.rank)
        if rank_state is not None and saved["world_size"] == self.info.world_size:
            set_rng_state(rank_state["rng"])
        self.resumed_from = checkpoint
        if self.info.is_main and announce:
            print(f"[distgan] resumed from {checkpoint.path} (step {self.state.step})")

    def _batches(self):
        """Batches across epochs; the data position advances as each batch is taken."""
        while True:
            for batch in self.data.next_epoch():
                self.state.batch_in_epoch += 1
                if self.state.batch_in_epoch == self.batches_per_epoch:
                    self.state.epoch += 1
                    self.state.batch_in_epoch = 0
                yield batch

    # ------------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        cfg, info = self.cfg, self.info
        max_steps = cfg.train.max_steps
        batches = self._batches()
        bar = (tqdm(total=max_steps, initial=self.state.step, dynamic_ncols=True, desc="train")
               if info.is_main and cfg.log.progress_bar else None)
        last_checkpoint = self.resumed_from.path if self.resumed_from else None
        requeue = False
        try:
            while self.state.step < max_steps:
                start = time.perf_counter()
                self.watchdog.beat("waiting for data", self.state.step)
                micro_batches = [next(batches) for _ in range(cfg.train.grad_accum)]
                data_time = time.perf_counter() - start
                self.watchdog.beat("training step (D and G updates, collectives)")
                values = self.train_step(micro_batches)
                step_time = time.perf_counter() - start
                self.state.step += 1
                step = self.state.step
                samples = sum(b["audio"].shape[0] for b in micro_batches)
                values.update({
                    "perf/steps_per_second": 1.0 / step_time,
                    "perf/audio_seconds_per_second": samples * cfg.data.segment_samples
                    / cfg.audio.sample_rate / step_time,
                    "perf/data_wait_fraction": data_time / step_time,
                })
                self.logger.add(values)
                skips = sum(b["skips"] for b in micro_batches).tolist()
                self.logger.count({f"data_skips/{r}": float(n) for r, n in zip(COUNTER_NAMES, skips, strict=True)})
                if self.state.consecutive_skips >= cfg.faults.max_consecutive_skips:
                    self._handle_divergence(step)
                    batches = self._batches()  # the restored data position
                    continue

                if step % cfg.log.every_steps == 0 or step == max_steps:
                    self.logger.add({"perf/peak_memory_mb": _peak_memory_mb(info.device)})
                    reduced = self.logger.reduce(step)
                    self.logger.scalars(step, reduced)
                    if bar is not None:
                        bar.set_postfix({k.split("/")[-1]: f"{reduced[k]:.3g}" for k in
                                         ("d/total", "g/mel", "perf/audio_seconds_per_second") if k in reduced})
                if cfg.log.audio_every_steps and step % cfg.log.audio_every_steps == 0:
                    self.watchdog.beat("validation")
                    self.validator.run(self.g, self.logger, step)
                if bar is not None:
                    bar.update(1)
                stop = distributed.any_rank(self.stop_requested(), info.device)
                periodic = cfg.checkpoint.every_steps and step % cfg.checkpoint.every_steps == 0
                # Never checkpoint inside a streak of non-finite updates: the weights may be bad,
                # and the last good checkpoint is what a rollback or a restart needs.
                if (periodic or stop or step == max_steps) and self.state.consecutive_skips == 0:
                    self.watchdog.beat("checkpoint")
                    last_checkpoint = self.save_checkpoint()
                if stop and step < max_steps:
                    requeue = True
                    break
            if last_checkpoint is None or self.state.step == 0:
                last_checkpoint = self.save_checkpoint()
        finally:
            self.watchdog.close()
            if bar is not None:
                bar.close()
            self.logger.close()
        return TrainResult(self.state, last_checkpoint, requeue)

    def _handle_divergence(self, step: int) -> None:
        """After too many consecutive non-finite updates: roll back with a lower LR, or stop."""
        factor = self.cfg.faults.rollback_lr_factor
        checkpoint = latest_checkpoint(self.run_dir, self.info.world_size, report=lambda _: None)
        message = (f"{self.state.consecutive_skips} consecutive updates skipped for non-finite values, "
                   f"last at step {step} in {self._bad_term}")
        if factor is None or checkpoint is None:
            where = f"; last good checkpoint: {checkpoint.path}" if checkpoint else ""
            raise NonFiniteError(f"stopping: {message}{where}")
        lr_scale = self.state.lr_scale * factor
        if self.info.is_main:
            print(f"[distgan] {message}: rolling back to {checkpoint.path}, learning rates x{lr_scale:g}")
        self._restore(checkpoint, announce=False)
        self.logger.discard_pending()  # the abandoned steps' values; their counts stay
        self.state.lr_scale = lr_scale
        self.state.consecutive_skips = 0
        self.data = train_data.train_loader(self.cfg, self.info, train_data.corpus_spec(self.cfg, self.info),
                                            self.state.epoch, self.state.batch_in_epoch)

    # ------------------------------------------------------------------------------------------
    def train_step(self, micro_batches: list[dict]) -> dict[str, torch.Tensor | float]:
        cfg, step = self.cfg, self.state.step
        train_d = step >= cfg.train.mel_only_steps
        train_g = not train_d or step % cfg.train.d_steps_per_g == 0
        values: dict[str, torch.Tensor | float] = {}
        for engine, optim, key in ((self.g, cfg.optim.generator, "lr/g"),
                                   (self.d, cfg.optim.discriminator, "lr/d")):
            lr = learning_rate(optim, step, self.batches_per_epoch) * self.state.lr_scale
            engine.set_lr(lr)
            values[key] = lr
        device = self.info.device
        waves = [b["audio"].to(device, non_blocking=True) for b in micro_batches]
        mels = [self.mel_input(w) for w in waves]
        # With one micro-batch, G's forward is shared by both halves (as HiFi-GAN does);
        # with more, the G half recomputes it rather than holding every graph.
        share_forward = train_g and len(waves) == 1
        fakes = []
        skipped = False
        if train_d:
            with torch.set_grad_enabled(share_forward):
                fakes = [self.generate(mel) for mel in mels]
            d_values = self.d_update(waves, fakes)
            skipped |= d_values is None
            values.update(d_values or {})
        if train_g:
            g_values = self.g_update(waves, mels, fakes if share_forward else None, adversarial=train_d)
            skipped |= g_values is None
            values.update(g_values or {})
        self.state.consecutive_skips = self.state.consecutive_skips + 1 if skipped else 0
        for engine, key in ((self.g, "loss_scale/g"), (self.d, "loss_scale/d")):
            scale = engine.loss_scale()
            if scale is not None:
                values[key] = scale
        return values

    def generate(self, mel: torch.Tensor) -> torch.Tensor:
        """Waveform ``[B, 1, T]`` from log-mel ``[B, n_mels, frames]`` through the training module."""
        with self.g.autocast():
            return self.g.module(mel.to(self.g.input_dtype))

    def _discriminate(self, module: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor):
        """D on real and fake in one batch; returns (real_logits, fake_logits, real_feats, fake_feats)."""
        batch = torch.cat([real.unsqueeze(1).to(self.d.input_dtype), fake.to(self.d.input_dtype)])
        with self.d.autocast():
            logits, feats = module(batch)
        n = real.shape[0]
        return ([x[:n] for x in logits], [x[n:] for x in logits],
                [[f[:n] for f in fs] for fs in feats], [[f[n:] for f in fs] for fs in feats])

    def _all_finite(self, terms: dict[str, torch.Tensor]) -> bool:
        """Whether every rank's loss terms are finite: all ranks skip an update together or none does.

        One host synchronisation per update; a skipped update leaves the optimizer untouched.
        """
        bad = [name for name, value in terms.items() if not bool(torch.isfinite(value).item())]
        if not distributed.any_rank(bool(bad), self.info.device):
            return True
        # Rare, and every rank is here: tell every rank which terms failed where.
        per_rank = distributed.all_gather_object(bad)
        self._bad_term = ", ".join(f"{name} (rank {rank})" for rank, names in enumerate(per_rank) for name in names)
        return False

    def _skip_update(self, engine: ModelEngine) -> None:
        engine.zero_grad()
        # Each rank adds 1/world_size: the reduced total counts the update once.
        self.logger.count({f"skipped_updates/{engine.name[0]}": 1.0 / self.info.world_size})

    def d_update(self, waves: list[torch.Tensor], fakes: list[torch.Tensor]) -> dict | None:
        """One discriminator update on real vs. generated (detached) audio; None if skipped."""
        kind = self.cfg.loss.adversarial
        values: dict[str, torch.Tensor | float] = {}
        for i, (wave, fake) in enumerate(zip(waves, fakes, strict=True)):
            real_logits, fake_logits, _, _ = self._discriminate(self.d.module, wave, fake.detach())
            d_real, d_fake = losses.discriminator_adversarial_loss(real_logits, fake_logits, kind)
            d_loss = d_real + d_fake
            if not self._all_finite({"d/real": d_real, "d/fake": d_fake}):
                self._skip_update(self.d)
                return None
            with self.d.accumulating(last=i == len(waves) - 1):
                self.d.backward(d_loss)
            values = {"d/real": d_real.detach(), "d/fake": d_fake.detach(), "d/total": d_loss.detach()}
        result = self.d.step()
        values["grad_norm/d"] = result.grad_norm
        if result.skipped:
            self.logger.count({"skipped_updates/d": 1.0 / self.info.world_size})
        return values

    def g_update(self, waves: list[torch.Tensor], mels: list[torch.Tensor],
                 fakes: list[torch.Tensor] | None, adversarial: bool) -> dict | None:
        """One generator update (mel L1, plus adversarial and feature matching after the warm-up)."""
        cfg = self.cfg.loss
        values: dict[str, torch.Tensor | float] = {}
        for i, (wave, mel) in enumerate(zip(waves, mels, strict=True)):
            fake = fakes[i] if fakes is not None else self.generate(mel)
            terms = {"g/mel": losses.mel_l1_loss(self.mel_loss(wave), self.mel_loss(fake.squeeze(1)))}
            if adversarial:
                # D frozen, and called unwrapped: no DDP hooks, and no gradient into its engine.
                with self.d.frozen():
                    _, fake_logits, real_feats, fake_feats = self._discriminate(self.d.model, wave, fake)
                terms["g/adv"] = losses.generator_adversarial_loss(fake_logits, cfg.adversarial)
                terms["g/fm"] = losses.feature_matching_loss(real_feats, fake_feats)
            if not self._all_finite(terms):
                self._skip_update(self.g)
                return None
            g_loss = cfg.mel_weight * terms["g/mel"]
            if adversarial:
                g_loss = g_loss + cfg.adv_weight * terms["g/adv"] + cfg.fm_weight * terms["g/fm"]
            with self.g.accumulating(last=i == len(waves) - 1):
                self.g.backward(g_loss)
            values = {name: value.detach() for name, value in terms.items()}
            values["g/total"] = g_loss.detach()
        result = self.g.step()
        values["grad_norm/g"] = result.grad_norm
        if result.skipped:
            self.logger.count({"skipped_updates/g": 1.0 / self.info.world_size})
        return values

    # ------------------------------------------------------------------------------------------
    def weight_fingerprint(self) -> dict[str, str]:
        """SHA-256 of each model's full weights as this rank sees them (ZeRO-3: gathered)."""
        out = {}
        for engine in (self.g, self.d):
            digest = hashlib.sha256()
            with engine.full_parameters() as model:
                for name, tensor in sorted(model.state_dict().items()):
                    digest.update(name.encode())
                    digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
            out[engine.name] = digest.hexdigest()
        return out

    def save_checkpoint(self) -> Path:
        self.state.counts = dict(self.logger.totals)
        trainer_state = {"state": asdict(self.state), "world_size": self.info.world_size,
                         "deepspeed_stage": self.info.deepspeed_stage}
        rank_state = {"rng": rng_state(), "weights": self.weight_fingerprint(), "step": self.state.step}
        return self.checkpoints.save(self.state.step, (self.g, self.d), trainer_state, rank_state,
                                     dump_config(self.cfg))

