"""What each rank holds for one training step, per launch mode (``distgan bench memory``).

**Per-rank state, measured from the engines.** For each launch mode (DDP, DeepSpeed ZeRO-1/2/3) the
command starts one process group on two CPU ranks (``accelerate launch`` with ``launch/cpu_*.yaml``)
that builds the config's models and engines as training does and makes one real ``GANStep``. On
each rank it then sums the bytes of the tensors that are actually there, never a formula:

- *optimizer state*: every tensor in the optimizer's ``state_dict()`` (DeepSpeed's is this rank's
  partition), split into the Adam moments (and step counts) and the fp32 master copy that
  DeepSpeed's ZeRO optimizers keep of their partition even in fp32 training;
- *parameters*: each parameter's storage on this rank (ZeRO-3: its partition, ``ds_tensor``);
- *EMA* (with ``train.ema_decay`` set): the fp32 average of G's weights this rank keeps
  (``distgan.train.ema``; ZeRO-3: of its partition only), after the step moved it;
- *gradients*: read just before each engine's step, after the backward: the ``.grad`` tensors plus
  every tensor the optimizer keeps under an attribute named for gradients (ZeRO's partitioned
  gradient buffers). DDP's own bucket copies of the gradients are not visible from here. At that
  point ZeRO-1 and ZeRO-2 hold the same: ZeRO-1 reduces the whole gradients into this rank's
  partition at the end of the backward and frees them; ZeRO-2's gain is that they never all exist
  at once during the backward, a transient this reading does not see.

Bytes are counted once per storage byte (views into one flat buffer count as the union of their
ranges), so a flat buffer and the parameters viewing it are not counted twice.

**Activation checkpointing.** For a family that offers it (HiFi-GAN, BigVGAN), ``peak_step_memory``
runs one step in a fresh process per variant (``model.generator.activation_checkpointing`` off and on) with glibc's mmap threshold lowered, so
freed tensors go back to the OS and the resident set follows live tensors; after a warm-up step it
resets the kernel's peak-RSS mark (``/proc/self/clear_refs``) and reports the peak of one step and
how far it rose above the resident set before it. PyTorch keeps no allocator statistics on CPU.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from distgan.config import Config, load_config

REPO = Path(__file__).resolve().parents[2]
LAUNCH_CONFIGS = {"ddp": "cpu_ddp.yaml", "zero1": "cpu_zero1.yaml", "zero2": "cpu_zero2.yaml",
                  "zero3": "cpu_zero3.yaml"}
MODES = tuple(LAUNCH_CONFIGS)


# --- counting ------------------------------------------------------------------------------------
def tensors_in(obj: Any, depth: int = 0) -> Iterator[torch.Tensor]:
    """Every tensor in nested dicts, lists and tuples."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif depth < 6 and isinstance(obj, dict):
        for value in obj.values():
            yield from tensors_in(value, depth + 1)
    elif depth < 6 and isinstance(obj, (list, tuple)):
        for value in obj:
            yield from tensors_in(value, depth + 1)


def referenced_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes the tensors reference, each storage byte once (the union of their ranges)."""
    ranges: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for t in tensors:
        if t.numel() == 0:
            continue
        start = t.data_ptr()
        extent = 1 + sum((size - 1) * stride for size, stride in zip(t.shape, t.stride(), strict=True))
        ranges[t.untyped_storage().data_ptr()].append((start, start + extent * t.element_size()))
    total = 0
    for spans in ranges.values():
        end = -1
        for lo, hi in sorted(spans):
            total += max(0, hi - max(lo, end))
            end = max(end, hi)
    return total


def _is_state(path: tuple[str, ...]) -> bool:
    return "state" in path


def _paths(obj: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], torch.Tensor]]:
    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _paths(value, (*path, str(key)))
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _paths(value, path)


def optimizer_state_bytes(optimizer: Any) -> dict[str, int]:
    """Adam moments (entries under a ``state`` key) and everything else in ``state_dict()`` (ZeRO's
    fp32 master partition)."""
    entries = list(_paths(optimizer.state_dict()))
    return {"moments": referenced_bytes(t for path, t in entries if _is_state(path)),
            "master": referenced_bytes(t for path, t in entries if not _is_state(path))}


def parameter_bytes(model: torch.nn.Module) -> int:
    return referenced_bytes(getattr(p, "ds_tensor", p) for p in model.parameters())


def gradient_bytes(model: torch.nn.Module, optimizer: Any) -> int:
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    for name, value in vars(optimizer).items():
        if "grad" in name.lower():
            grads.extend(tensors_in(value))
    for t in tensors_in([*getattr(optimizer, "single_partition_of_fp32_groups", []),
                         *getattr(optimizer, "fp32_partitioned_groups_flat", [])]):
        if t.grad is not None:
            grads.append(t.grad)
    return referenced_bytes(grads)


# --- one step, inside a process group ------------------------------------------------------------
def _trainer_parts(cfg: Config):
    from distgan.families import build_models, front_end
    from distgan.losses.mel import MelSpectrogram
    from distgan.train.ema import ModelEMA
    from distgan.train.engine import build_engines
    from distgan.train.step import GANStep

    torch.manual_seed(cfg.train.seed)
    generator, discriminator = build_models(cfg)
    g, d, info = build_engines(cfg, generator, discriminator)
    mel_input = front_end(cfg.model.generator, cfg.audio).to(info.device)
    ema = ModelEMA.configured(cfg.train.ema_decay, g)
    step = GANStep(cfg, g, d, info, mel_input, MelSpectrogram.for_loss(cfg.audio).to(info.device),
                   lambda _: contextlib.nullcontext(), lambda _: None, ema)
    wave = 0.1 * torch.randn(cfg.data.batch_size, cfg.data.segment_samples, generator=torch.Generator().manual_seed(0))
    return g, d, info, step, wave.to(info.device)


def rank_memory(cfg: Config) -> dict[str, Any]:
    """One GAN step on this rank; what each engine holds (bytes), gradients read before its step."""
    g, d, info, step, wave = _trainer_parts(cfg)
    found: dict[str, dict[str, int]] = {}
    for engine in (g, d):
        original = engine.step

        def probed(engine=engine, original=original):
            found[engine.name] = {"grads": gradient_bytes(engine.model, engine.optimizer)}
            return original()

        engine.step = probed
    step([wave], 0)
    for engine in (g, d):
        found[engine.name].update(params=parameter_bytes(engine.model), **optimizer_state_bytes(engine.optimizer))
    found["generator"]["ema"] = step.ema.nbytes() if step.ema is not None else 0
    return {"rank": info.rank, "world_size": info.world_size, "stage": info.deepspeed_stage, **found}


def peak_step_memory(cfg: Config) -> dict[str, float]:
    """Peak resident set of one step after a warm-up step, and its rise above the set before it (MiB)."""
    *_, step, wave = _trainer_parts(cfg)
    step([wave], 0)  # optimizer state, lazy buffers and caches exist from here on
    with open("/proc/self/clear_refs", "w") as marks:
        marks.write("5")  # reset the peak-RSS mark (Linux)
    before = _status_kib("VmRSS")
    step([wave], 1)
    peak = _status_kib("VmHWM")
    return {"peak_mib": peak / 1024, "step_rise_mib": (peak - before) / 1024}


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status")


# --- the runs ------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}


def _run(command: list[str], env: dict[str, str], timeout: float) -> None:
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-4000:]}")


def per_mode_ranks(modes: Iterable[str], out: Path, module_args: Callable[[Path], list[str]],
                   timeout: float = 1800) -> dict[str, list[dict[str, Any]]]:
    """Per launch mode, a two-rank CPU process group running ``python -m <module_args(folder)>``;
    each rank writes ``folder/rank-N.json``, returned in rank order."""
    results = {}
    for mode in modes:
        folder = out / mode
        folder.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              str(REPO / "launch" / LAUNCH_CONFIGS[mode]), "--main_process_port", str(_free_port()),
              "-m", *module_args(folder)], _env(), timeout)
        results[mode] = [json.loads(path.read_text()) for path in sorted(folder.glob("rank-*.json"))]
    return results


def measure_modes(config: Path, overrides: list[str], modes: Iterable[str], out: Path,
                  timeout: float = 1800) -> dict[str, list[dict[str, Any]]]:
    """Per mode, each rank's ``rank_memory`` from a two-rank CPU process group."""
    return per_mode_ranks(modes, out, lambda folder: ["distgan.bench.memory", "rank", str(folder), str(config),
                                                      *overrides], timeout)


def measure_peaks(config: Path, overrides: list[str], timeout: float = 1800) -> dict[bool, dict[str, float]]:
    """``peak_step_memory`` without and with activation checkpointing, each in a fresh process;
    empty for a family whose section has no such switch (DAC's codec): nothing to compare."""
    if not hasattr(load_config(config, overrides).model.generator, "activation_checkpointing"):
        return {}
    results = {}
    for checkpointing in (False, True):
        with _temporary_json() as path:
            # Freed tensors go back to the OS at once, so the resident set follows the live ones.
            _run([sys.executable, "-m", "distgan.bench.memory", "peak", str(path), str(config), *overrides,
                  f"model.generator.activation_checkpointing={str(checkpointing).lower()}"],
                 _env(MALLOC_MMAP_THRESHOLD_="65536"), timeout)
            results[checkpointing] = json.loads(path.read_text())
    return results


@contextlib.contextmanager
def _temporary_json() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="distgan-memory-") as folder:
        yield Path(folder) / "peak.json"


def _worker(argv: list[str]) -> None:
    """``python -m distgan.bench.memory rank OUT_DIR CONFIG [overrides]`` (under a launcher) or
    ``... peak OUT_JSON CONFIG [overrides]`` (one process)."""
    what, out, config, *overrides = argv
    cfg = load_config(config, overrides)
    if what == "rank":
        result = rank_memory(cfg)
        (Path(out) / f"rank-{result['rank']}.json").write_text(json.dumps(result))
    else:
        Path(out).write_text(json.dumps(peak_step_memory(cfg)))


if __name__ == "__main__":
    _worker(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # no interpreter finalization under gloo (see distgan/cli.py)
