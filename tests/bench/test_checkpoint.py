"""``distgan bench checkpoint`` measures every part it reports (no timing asserts)."""

from __future__ import annotations

import re

import pytest

from distgan import cli
from tests.train.helpers import TINY


def test_bench_checkpoint_prints_the_added_cost(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "checkpoint", "--config", str(TINY), "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    save = re.search(r"save: torch.save ([\d.]+) s; \+ digests and fsync ([\d.]+) s", out)
    load = re.search(r"load: torch.load \(weights only\) ([\d.]+) s; \+ digests verified first ([\d.]+) s", out)
    assert save and load, out
    assert float(save.group(1)) > 0 and float(save.group(2)) > 0 and float(load.group(1)) > 0
