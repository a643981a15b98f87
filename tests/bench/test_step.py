"""`distgan bench step` runs end to end and prints both loops and their ratio."""

from __future__ import annotations

import re

import pytest

from tests.train.helpers import TINY, run_distgan


@pytest.mark.slow
def test_bench_step_prints_both_loops_and_the_ratio() -> None:
    done = run_distgan(["bench", "step", "--config", str(TINY), "--steps", "3", "--warmup", "1",
                        "data.batch_size=2", "data.segment_samples=4096", "data.num_workers=0"], timeout=300)
    distgan_row = re.search(r"^distgan\s+([\d.]+)", done.stdout, re.M)
    plain_row = re.search(r"^plain\s+([\d.]+)", done.stdout, re.M)
    ratio = re.search(r"overhead: distgan / plain = ([\d.]+)x", done.stdout)
    assert distgan_row and plain_row and ratio, done.stdout
    assert float(ratio.group(1)) == pytest.approx(float(distgan_row.group(1)) / float(plain_row.group(1)), rel=0.01)


@pytest.mark.slow
def test_under_load_each_setting_runs_as_named_while_the_load_runs() -> None:
    import os

    from distgan.bench.threads import background_load, compare

    with background_load(2) as busy:
        assert all(process.poll() is None for process in busy)
    assert all(process.poll() is not None for process in busy)  # stopped with the block
    overrides = ["data.batch_size=1", "data.segment_samples=4096", "data.num_workers=0", "log.progress_bar=false",
                 "log.val_every_steps=0", "checkpoint.every_steps=0", "faults.watchdog_minutes=0", "train.max_steps=3"]
    lines: list[str] = []
    found = compare(str(TINY), overrides, steps=1, warmup=1, rounds=1, load=1, report=lines.append)
    seen = {name: (row["threads"], row["wait_policy"]) for name, row in found.items()}
    assert seen == {"torch defaults": (os.cpu_count(), "libgomp default (spin)"), "one thread": (1, "libgomp default (spin)"),
                    "distgan defaults": (os.cpu_count(), "PASSIVE")}
    assert all(row["median"] > 0 and len(row["steps"]) == 1 for row in found.values()) and len(lines) == 3
