"""Training metrics: accumulated locally, reduced across ranks, written by rank 0 only.

Each step adds its local values; at a log step every rank joins one all-reduce of a flat tensor,
so a logged scalar is the mean over all ranks and all steps since the last log. Two exceptions:
throughput (``perf/audio_seconds_per_second``) is summed over ranks, i.e. the whole job's rate,
and counts (data skips, skipped updates) are added over ranks into running totals that the
checkpoint keeps, so the curve shows "how many so far". Only rank 0
opens a TensorBoard writer; the tags it writes are ordered for TensorBoard's first screen (``board.py``). Every rank appends its own local (unreduced) values to
``RUN_DIR/logs/rank-NNNNN.jsonl``, so a straggler or a diverging rank can be found afterwards.
"""

from __future__ import annotations

import json
import resource
from pathlib import Path

import numpy as np
import torch

from distgan import distributed
from distgan.data.stream import COUNTER_NAMES
from distgan.distributed import ProcessInfo
from distgan.train.board import tensorboard_scalars

# Rates summed over ranks (the job's throughput) instead of averaged.
SUMMED_OVER_RANKS = ("perf/audio_seconds_per_second",)

# The loss terms every family's objective may return (a family adds its own: FamilySpec.extra_terms).
LOSS_KEYS = ["d/real", "d/fake", "d/total", "g/adv", "g/fm", "g/mel", "g/total"]
COUNT_KEYS = ["skipped_updates/d", "skipped_updates/g"] + [f"data_skips/{r}" for r in COUNTER_NAMES]


def metric_keys(extra_terms: tuple[str, ...] = (), loss_scales: bool = False, balanced: bool = False) -> list[str]:
    """Every scalar a run logs: the loss terms, gradient norms, learning rates, throughput (and
    fp16's loss scales; with ``balanced``, the loss balancer's scale of each G term: ``balancer/mel``...)."""
    terms = LOSS_KEYS + list(extra_terms)
    scales = [f"balancer/{key.removeprefix('g/')}" for key in terms
              if balanced and key.startswith("g/") and key != "g/total"]
    keys = terms + scales + ["grad_norm/g", "grad_norm/d", "lr/g", "lr/d", "perf/steps_per_second",
                             "perf/audio_seconds_per_second", "perf/data_wait_fraction", "perf/peak_memory_mb"]
    return keys + (["loss_scale/g", "loss_scale/d"] if loss_scales else [])



class MetricLogger:
    def __init__(self, run_dir: Path, info: ProcessInfo, keys: list[str], count_keys: list[str],
                 totals: dict[str, float] | None = None, resumed_at: int | None = None) -> None:
        """``keys`` and ``count_keys``: every scalar and count this run may log, identical on all
        ranks (they fix the layout of the reduced tensor); ``totals``: counts so far and
        ``resumed_at``: the checkpoint's step, when resuming. TensorBoard then drops what an
        interrupted run logged after that step, so a resumed curve has no overlapping tail."""
        self.info = info
        self.keys = sorted(keys)
        self.count_keys = sorted(count_keys)
        self._index = {key: i for i, key in enumerate(self.keys)}
        # Sums stay on the device so that logging adds no host synchronisation per step.
        self._sums = torch.zeros(len(self.keys), dtype=torch.float64, device=info.device)
        self._counts = np.zeros(len(self.keys))
        self._new_counts = np.zeros(len(self.count_keys))
        self.totals = {key: float((totals or {}).get(key, 0.0)) for key in self.count_keys}
        log_dir = Path(run_dir) / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self._local = open(log_dir / f"rank-{info.rank:05d}.jsonl", "a")  # noqa: SIM115 - closed in close()
        self.writer = None
        if info.is_main:
            from torch.utils.tensorboard import SummaryWriter

            purge = resumed_at + 1 if resumed_at is not None else None
            self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=purge)

    def add(self, values: dict[str, float | torch.Tensor]) -> None:
        """Accumulate one step's local values (a key absent this step is not counted)."""
        for key, value in values.items():
            i = self._index[key]
            self._sums[i] += value.detach().to(torch.float64) if torch.is_tensor(value) else value
            self._counts[i] += 1

    def discard_pending(self) -> None:
        """Forget the scalars added since the last log (steps undone by a rollback); counts stay."""
        self._sums[:] = 0
        self._counts[:] = 0

    def count(self, deltas: dict[str, float]) -> None:
        """Add to counts (e.g. data samples skipped since the last batch)."""
        for key, value in deltas.items():
            self._new_counts[self.count_keys.index(key)] += value

    def reduce(self, step: int) -> dict[str, float]:
        """All ranks: means over ranks and steps, job throughput, and count totals."""
        local_sums = self._sums.cpu().numpy()
        local = {k: float(local_sums[i] / self._counts[i]) for k, i in self._index.items() if self._counts[i]}
        self._local.write(json.dumps({"step": step, **local}) + "\n")
        self._local.flush()
        n = len(self.keys)
        packed = torch.tensor(np.concatenate([local_sums, self._counts, self._new_counts]),
                              dtype=torch.float64)
        packed = distributed.all_reduce_sum(packed.to(self.info.device)).cpu().numpy()
        sums, counts, new_counts = packed[:n], packed[n:2 * n], packed[2 * n:]
        self._sums[:] = 0
        self._counts[:] = 0
        self._new_counts[:] = 0
        out = {}
        for key, i in self._index.items():
            if counts[i] == 0:
                continue
            mean = sums[i] / counts[i]
            out[key] = float(mean * self.info.world_size if key in SUMMED_OVER_RANKS else mean)
        for key, value in zip(self.count_keys, new_counts, strict=True):
            self.totals[key] += float(value)
            out[key] = self.totals[key]
        return out

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Write metrics to TensorBoard under the tags ``board.py`` orders for its first screen."""
        if self.writer is not None:
            for tag, value in tensorboard_scalars(values).items():
                self.writer.add_scalar(tag, value, step)
            self.writer.flush()

    def audio(self, tag: str, wave: torch.Tensor, step: int, sample_rate: int) -> None:
        if self.writer is not None:
            self.writer.add_audio(tag, wave.detach().float().cpu().clamp(-1, 1).reshape(1, -1), step,
                                  sample_rate=sample_rate)

    def image(self, tag: str, log_mel: torch.Tensor, step: int) -> None:
        """A log-mel ``[n_mels, frames]`` as a colour image, low frequencies at the bottom."""
        if self.writer is not None:
            self.writer.add_image(tag, mel_to_image(log_mel), step, dataformats="HWC")

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        self._local.close()
        if self.writer is not None:
            self.writer.close()


# A perceptually ordered dark-to-bright colour ramp (no matplotlib dependency).
_RAMP = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99],
                  [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164]], dtype=np.float64)


def mel_to_image(log_mel: torch.Tensor) -> np.ndarray:
    values = log_mel.detach().float().cpu().numpy()
    lo, hi = np.percentile(values, 1), values.max()
    scaled = np.clip((values - lo) / max(hi - lo, 1e-6), 0, 1)[::-1]  # row 0 = highest mel band
    position = scaled * (len(_RAMP) - 1)
    base = np.floor(position).astype(int).clip(0, len(_RAMP) - 2)
    frac = (position - base)[..., None]
    rgb = _RAMP[base] * (1 - frac) + _RAMP[base + 1] * frac
    return rgb.astype(np.uint8)


def peak_memory_mb(device: torch.device) -> float:
    """This process's peak memory: CUDA allocations on a GPU, else the resident set (``perf/peak_memory_mb``)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
