"""Do mixed-precision losses stay within the seed-to-seed noise of fp32? (``distgan bench precision``)

A faster step is worth nothing if it trains a different model, and a single fp32 run cannot say
how far apart two equally good runs land: GAN losses wander with the initial weights and the
data order. So the same recipe trains several times for the same number of steps, in one
process, on the same corpus: in fp32 with seeds s_0 .. s_{k-1} (``train.seed``: initial weights,
data order and crops), and in each lower precision with seed s_0 only. The lower-precision run
then differs from fp32 seed s_0 in its arithmetic alone, while the fp32 runs differ from one
another in what a user would call luck.

Each run is the real ``Trainer.fit`` in a temporary run directory, logging every step
(``log.every_steps=1``); its per-step losses are read back from the log of local values it writes
anyway (``logs/rank-00000.jsonl``), and its step times through the trainer's ``phase_timer``
(``step.PhaseClock``), so nothing is patched into the loop.

**Within noise, exactly.** For a loss L, a run's figure is the mean of L over its last W
steps (``--window``; default the last quarter). The noise of L is the largest gap between the
figures of any two fp32 seeds: ``max_ij |m(fp32, s_i) - m(fp32, s_j)|``, the range of the k fp32
figures. A precision P is *within noise* for L when ``|m(P, s_0) - m(fp32, s_0)| <= noise(L)``:
changing the arithmetic moved the loss no further than changing the seed did. With k = 2 the
noise is a single gap, so a verdict rests on one draw; more seeds widen the range (three
seeds by default). Fewer than two fp32 seeds give no noise and no verdict.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from distgan.config import Config, ConfigError, load_config

LOWER_PRECISIONS = ("bf16", "fp16")
# Every step logged (its own values, not a mean over steps), nothing periodic.
FIXED = ["log.progress_bar=false", "log.every_steps=1", "log.val_every_steps=0", "checkpoint.every_steps=0",
         "faults.watchdog_minutes=0"]


@dataclass
class PrecisionRun:
    """One training run: its per-step losses ``{name: [(step, value), ...]}`` and step times."""

    precision: str
    seed: int
    losses: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    step_seconds: list[float] = field(default_factory=list)
    parameters: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.precision} seed {self.seed}"

    def window_mean(self, loss: str, window: int) -> float:
        """The mean of ``loss`` over the steps after the last ``window`` began."""
        values = self.losses[loss]
        last = values[-1][0]
        return statistics.fmean(v for step, v in values if step > last - window)

    def final(self, loss: str) -> float:
        return self.losses[loss][-1][1]


@dataclass
class Verdict:
    """A precision against fp32 seed s_0, for one loss (module docstring)."""

    loss: str
    gap: float
    noise: float | None

    @property
    def within(self) -> bool | None:
        return None if self.noise is None else self.gap <= self.noise

    @property
    def text(self) -> str:
        return {True: "within noise", False: "outside noise", None: "no noise estimate"}[self.within]


def verdict(loss: str, lower: float, same_seed_fp32: float, fp32_seeds: list[float]) -> Verdict:
    """``lower`` (a lower precision's figure) against fp32 of the same seed, by the rule above."""
    noise = max(fp32_seeds) - min(fp32_seeds) if len(fp32_seeds) >= 2 else None
    return Verdict(loss, abs(lower - same_seed_fp32), noise)


def run_config(config: Path, overrides: list[str], precision: str, seed: int, steps: int) -> Config:
    """The recipe with this run's precision, seed and length (validated as for ``distgan train``)."""
    return load_config(config, [*overrides, *FIXED, f"train.precision={precision}", f"train.seed={seed}",
                                f"train.max_steps={steps}"])


def check_precisions(precisions: list[str], device_type: str) -> None:
    """Refuse what cannot be compared, before any run starts."""
    unknown = [p for p in precisions if p not in LOWER_PRECISIONS]
    if unknown:
        raise ConfigError(f"--precisions: {', '.join(unknown)} is not a lower precision; choose from "
                          f"{', '.join(LOWER_PRECISIONS)} (fp32 always runs, once per seed)")
    if "fp16" in precisions and device_type == "cpu":
        import torch

        probe = torch.nn.Conv1d(1, 1, 3)
        try:
            with torch.autocast("cpu", dtype=torch.float16):
                probe(torch.zeros(1, 1, 8)).sum()
        except RuntimeError as err:
            raise ConfigError(f"--precisions fp16: this PyTorch cannot autocast convolutions to fp16 on the "
                              f"CPU ({err}); use bf16 here, or run fp16 on a GPU") from err


def train_run(cfg: Config) -> PrecisionRun:
    """``Trainer.fit`` for ``cfg`` in a temporary run directory; the losses it logged, its step times."""
    import torch

    from distgan.bench.step import PhaseClock
    from distgan.train.trainer import Trainer

    run = PrecisionRun(cfg.train.precision, cfg.train.seed)
    with tempfile.TemporaryDirectory(prefix="distgan-precision-") as run_dir:
        clock = PhaseClock(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
        trainer = Trainer(cfg, Path(run_dir), phase_timer=clock)
        run.parameters = {engine.name: sum(p.numel() for p in engine.model.parameters())
                          for engine in (trainer.g, trainer.d)}
        trainer.fit()
        run.losses = read_losses(Path(run_dir) / "logs" / "rank-00000.jsonl")
    run.step_seconds = clock.seconds["step"]
    return run


def read_losses(log: Path) -> dict[str, list[tuple[int, float]]]:
    """Per loss, ``(step, value)`` for every step that logged it, from a rank's local log."""
    from distgan.train.logger import LOSS_KEYS

    losses: dict[str, list[tuple[int, float]]] = {}
    for line in log.read_text().splitlines():
        row = json.loads(line)
        for key in LOSS_KEYS:
            if key in row:
                losses.setdefault(key, []).append((int(row["step"]), float(row[key])))
    return losses


def planned_runs(precisions: list[str], seeds: list[int]) -> list[tuple[str, int]]:
    """The order that gives a verdict soonest: two fp32 seeds, the lower precisions, the other seeds."""
    first = [("fp32", s) for s in seeds[:2]]
    return [*first, *((p, seeds[0]) for p in precisions), *(("fp32", s) for s in seeds[2:])]


def measure(make_config: Callable[[str, int], Config], precisions: list[str], seeds: list[int],
            budget: float | None = None, report: Callable[[str], None] = print) -> list[PrecisionRun | str]:
    """Every planned run, in order; a run that would end after ``budget`` seconds (judged by the
    slowest run so far) is skipped, and stands in the list as the reason."""
    start, slowest = time.monotonic(), 0.0
    out: list[PrecisionRun | str] = []
    for precision, seed in planned_runs(precisions, seeds):
        if budget is not None and time.monotonic() - start + slowest > budget:
            out.append(f"{precision} seed {seed}: skipped, the time budget ({budget:.0f} s) is spent")
            report(out[-1])
            continue
        began = time.monotonic()
        report(f"training {precision} seed {seed}...")
        out.append(train_run(make_config(precision, seed)))
        slowest = max(slowest, time.monotonic() - began)
    return out


def to_json(runs: list[PrecisionRun]) -> str:
    return json.dumps([{"precision": r.precision, "seed": r.seed, "losses": r.losses,
                        "step_seconds": r.step_seconds, "parameters": r.parameters} for r in runs], indent=1)
