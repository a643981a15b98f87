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
