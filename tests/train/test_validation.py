"""Quality metrics in training: ``log.val_metrics`` on the validation clips, and what happens when
a metric cannot be computed here."""

from __future__ import annotations

from pathlib import Path

import pytest

from distgan.config import ConfigError, load_config
from distgan.train.validation import scored_metrics
from tests.evaluation.helpers import run_without
from tests.train.helpers import scalars, train_args


def test_a_missing_package_skips_its_metric_with_one_message(tmp_path: Path) -> None:
    done = run_without("pystoi", train_args(tmp_path, "train.max_steps=2", "log.val_every_steps=1",
                                            "log.val_clips=1", "log.val_metrics=[stoi,mrstft]"))
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.count("validation metric stoi is skipped: pystoi not installed") == 1
    values = scalars(tmp_path)
    assert sorted(values["val/mrstft"]) == sorted(values["val/mel_l1"]) == [1, 2]
    assert "val/stoi" not in values


def test_metric_names_are_checked_with_the_config() -> None:
    with pytest.raises(ConfigError, match=r"unknown metrics \['psq'\]"):
        load_config(None, ["log.val_metrics=[pesq, psq]"])
    # mel_l1 is always written by the validator itself, so it is not scored a second time.
    assert scored_metrics(["mel_l1", "pesq", "stoi", "pesq"], scores=True) == ("pesq", "stoi")
    assert scored_metrics(["pesq", "stoi"], scores=False) == ()  # other ranks, or validation off
