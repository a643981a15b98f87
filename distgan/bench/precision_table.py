"""The table ``distgan bench precision`` prints (the rule it applies: ``distgan.bench.precision``).

Three parts: per run its mean losses over the window, per run its final losses, and per lower
precision and loss the gap to fp32 of the same seed beside the fp32 seed-to-seed noise, with the
verdict. Losses are columns in the trainer's order, so a reader finds the same name in TensorBoard.
"""

from __future__ import annotations

import statistics

from distgan.bench.precision import PrecisionRun, Verdict, verdict


def loss_names(runs: list[PrecisionRun]) -> list[str]:
    """The losses every run logged, in the trainer's order."""
    from distgan.train.logger import LOSS_KEYS

    return [key for key in LOSS_KEYS if all(key in run.losses for run in runs)]


def verdicts(runs: list[PrecisionRun], window: int) -> dict[str, list[Verdict]]:
    """Per lower precision, one verdict per loss, against fp32 of the same seed (the first fp32 seed)."""
    fp32 = [r for r in runs if r.precision == "fp32"]
    if not fp32:
        return {}
    base = fp32[0]
    out = {}
    for run in runs:
        if run.precision == "fp32" or run.seed != base.seed:
            continue
        out[run.precision] = [verdict(loss, run.window_mean(loss, window), base.window_mean(loss, window),
                                      [r.window_mean(loss, window) for r in fp32])
                              for loss in loss_names(runs)]
    return out


def table(runs: list[PrecisionRun], window: int) -> list[str]:
    """The lines of the table (module docstring)."""
    names = loss_names(runs)
    last = max(run.losses[names[0]][-1][0] for run in runs) if names else 0
    head = f"{'run':<18}{'s/step':>9}" + "".join(f"{n:>11}" for n in names)
    lines = [f"mean over the last {window} steps (steps {last - window + 1}-{last}); s/step: median", head]
    for run in runs:
        seconds = statistics.median(run.step_seconds) if run.step_seconds else float("nan")
        lines.append(f"{run.name:<18}{seconds:>9.4f}" + "".join(f"{run.window_mean(n, window):>11.5g}" for n in names))
    lines += [f"final values (step {last})", f"{'run':<18}{'':>9}" + "".join(f"{n:>11}" for n in names)]
    lines += [f"{run.name:<18}{'':>9}" + "".join(f"{run.final(n):>11.5g}" for n in names) for run in runs]
    fp32 = [r for r in runs if r.precision == "fp32"]
    for precision, found in verdicts(runs, window).items():
        lines += [f"{precision} against fp32 seed {fp32[0].seed}: gap = |difference of the means|; noise = the "
                  f"largest gap between the {len(fp32)} fp32 seeds' means",
                  f"{'loss':<10}{precision:>11}{'fp32':>11}{'gap':>11}{'noise':>11}{'gap/noise':>11}   verdict"]
        for v in found:
            ours = next(r for r in runs if r.precision == precision).window_mean(v.loss, window)
            ratio = f"{v.gap / v.noise:>11.3f}" if v.noise else f"{'-':>11}"
            noise = f"{v.noise:>11.4g}" if v.noise is not None else f"{'-':>11}"
            lines.append(f"{v.loss:<10}{ours:>11.5g}{fp32[0].window_mean(v.loss, window):>11.5g}{v.gap:>11.4g}"
                         f"{noise}{ratio}   {v.text}")
        within = sum(v.within is True for v in found)
        lines.append(f"{precision}: {within} of {len(found)} losses within noise")
    return lines
