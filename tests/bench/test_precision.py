"""``distgan bench precision``: the seed alone spreads fp32, the precision alone moves bf16, the table
shows every run and loss, and the verdict follows its rule (``distgan/bench/precision.py``)."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from distgan.bench.precision import PrecisionRun, planned_runs, run_config, train_run, verdict
from distgan.bench.precision_table import table, verdicts
from tests.train.helpers import FAST, TINY

STEPS = 2
SMALL = [*FAST, "data.batch_size=1"]


def _constructed(precision: str, seed: int, mel: list[float], total: list[float]) -> PrecisionRun:
    return PrecisionRun(precision, seed, {"g/mel": list(enumerate(mel, 1)), "d/total": list(enumerate(total, 1))},
                        step_seconds=[0.5, 0.7])


def test_the_verdict_is_the_gap_against_the_range_of_the_fp32_seeds() -> None:
    inside = verdict("g/mel", lower=1.05, same_seed_fp32=1.0, fp32_seeds=[1.0, 1.2, 1.1])
    assert (inside.gap, inside.noise, inside.within, inside.text) == (pytest.approx(0.05), pytest.approx(0.2),
                                                                      True, "within noise")
    outside = verdict("g/mel", lower=0.7, same_seed_fp32=1.0, fp32_seeds=[1.0, 1.2, 1.1])
    assert (outside.within, outside.text) == (False, "outside noise")
    assert verdict("g/mel", 1.25, 1.0, [1.0, 1.25]).within is True  # a gap equal to the noise is within it
    assert verdict("g/mel", 1.0, 1.0, [1.0]).text == "no noise estimate"


def test_windows_verdicts_and_table_on_constructed_runs() -> None:
    runs = [_constructed("fp32", 7, [9.0, 2.0, 1.0, 1.0], [5, 5, 5, 5]),
            _constructed("fp32", 8, [9.0, 2.0, 1.2, 1.2], [5, 5, 5, 6]),
            _constructed("bf16", 7, [0.0, 0.0, 1.1, 1.1], [5, 5, 5, 7])]
    assert runs[0].window_mean("g/mel", 2) == 1.0 and runs[0].window_mean("g/mel", 3) == pytest.approx(4 / 3)
    found = {v.loss: v for v in verdicts(runs, window=2)["bf16"]}
    # g/mel: bf16 1.1 vs 1.0, seeds 1.0 and 1.2 -> within; d/total: 6 vs 5, seeds 5 and 5.5 -> outside.
    assert (found["g/mel"].within, found["d/total"].within) == (True, False)
    lines = table(runs, window=2)
    assert "steps 3-4" in lines[0]
    for name in ("fp32 seed 7", "fp32 seed 8", "bf16 seed 7"):
        assert sum(line.startswith(name) for line in lines) == 2  # its means and its final values
    assert re.search(r"^d/total\s+6\s+5\s+1\s+0\.5\s+2\.000\s+outside noise$", "\n".join(lines), re.M), lines
    assert lines[-1] == "bf16: 1 of 2 losses within noise"


def test_two_fp32_seeds_run_before_the_lower_precisions() -> None:
    assert planned_runs(["bf16", "fp16"], [1, 2, 3]) == [("fp32", 1), ("fp32", 2), ("bf16", 1), ("fp16", 1),
                                                         ("fp32", 3)]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict]]:
    """``distgan bench precision`` on the tiny recipe: fp32 seeds 1234 and 1235, bf16 seed 1234."""
    from distgan import cli

    out = tmp_path_factory.mktemp("precision") / "runs.json"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli.main(["bench", "precision", "--config", str(TINY), "--steps", str(STEPS), "--seeds", "2",
                         "--json", str(out), *SMALL]) == 0
    return printed.getvalue(), json.loads(out.read_text())


def _losses(runs: list[dict], precision: str, seed: int) -> dict[str, list[list[float]]]:
    return next(r["losses"] for r in runs if (r["precision"], r["seed"]) == (precision, seed))


def test_the_same_seed_in_fp32_gives_identical_losses(bench: tuple[str, list[dict]]) -> None:
    again = train_run(run_config(TINY, SMALL, "fp32", 1234, STEPS))
    first = _losses(bench[1], "fp32", 1234)
    assert {k: [list(p) for p in v] for k, v in again.losses.items()} == first
    assert len(first["g/mel"]) == STEPS and _losses(bench[1], "fp32", 1235)["g/mel"] != first["g/mel"]


def test_bf16_changes_the_arithmetic_not_the_run(bench: tuple[str, list[dict]]) -> None:
    fp32, bf16 = _losses(bench[1], "fp32", 1234), _losses(bench[1], "bf16", 1234)
    assert bf16["d/total"][0][1] != fp32["d/total"][0][1]
    # Same weights and batch at step 1: the first D loss agrees to bf16's rounding, unlike another seed's.
    assert bf16["d/total"][0][1] == pytest.approx(fp32["d/total"][0][1], rel=0.02)


def test_the_table_names_every_run_and_loss_and_judges_each_loss(bench: tuple[str, list[dict]]) -> None:
    printed, runs = bench
    assert re.search(r"on cpu .*\(\d+ threads\).*batch 1 x 4096 samples", printed), printed
    head = next(line for line in printed.splitlines() if line.startswith("run "))
    losses = list(runs[0]["losses"])
    assert head.split()[2:] == losses == ["d/real", "d/fake", "d/total", "g/adv", "g/fm", "g/mel", "g/total"]
    for name in ("fp32 seed 1234", "fp32 seed 1235", "bf16 seed 1234"):
        assert len(re.findall(rf"^{name}\s", printed, re.M)) == 2, printed
    judged = re.findall(r"^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+\S+\s+(within|outside) noise$", printed, re.M)
    assert [row[0] for row in judged] == losses
    window = max(1, STEPS // 4)
    for loss, _, _, gap, noise, word in judged:
        means = {(p, s): sum(v for _, v in _losses(runs, p, s)[loss][-window:]) / window
                 for p, s in (("fp32", 1234), ("fp32", 1235), ("bf16", 1234))}
        assert float(gap) == pytest.approx(abs(means["bf16", 1234] - means["fp32", 1234]), rel=1e-3, abs=1e-6)
        assert float(noise) == pytest.approx(abs(means["fp32", 1235] - means["fp32", 1234]), rel=1e-3)
        assert (word == "within") == (float(gap) <= float(noise))


def test_a_precision_that_is_not_lower_is_refused_by_name(tmp_path: Path) -> None:
    from distgan.bench.precision import check_precisions
    from distgan.config import ConfigError

    with pytest.raises(ConfigError, match="--precisions: fp32 is not a lower precision"):
        check_precisions(["fp32"], "cpu")
