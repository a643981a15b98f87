"""Float fields take numbers as people type them, on the command line and in YAML files.

PyYAML follows YAML 1.1, which reads ``1e-4`` (no dot) and ``inf`` as strings; a user does not
know that and should not have to write ``1.0e-4``."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest

from distgan.config import ConfigError, dump_config, load_config
from distgan.config.loading import INFINITY_MEANS_OFF
from tests.train.helpers import run_distgan

TYPED = {"optim.generator.lr": ("1e-4", 1e-4), "optim.discriminator.lr": ("2E-4", 2e-4),
         "loss.mel_weight": ("1e+3", 1000.0), "loss.fm_weight": (".5", 0.5), "audio.fmin": ("-0", 0.0),
         "optim.generator.eps": ("1E-8", 1e-8)}


def _values(cfg) -> dict[str, float]:
    return {key: functools.reduce(getattr, key.split("."), cfg) for key in TYPED}


def test_exponents_without_a_dot_read_as_numbers_in_overrides() -> None:
    cfg = load_config(None, [f"{key}={text}" for key, (text, _) in TYPED.items()])
    assert _values(cfg) == {key: value for key, (_, value) in TYPED.items()}
    assert all(isinstance(v, float) for v in _values(cfg).values())
    assert load_config(None, ["optim.generator.betas=[5e-1, 9E-1]"]).optim.generator.betas == [0.5, 0.9]


def test_exponents_without_a_dot_read_as_numbers_in_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "typed.yaml"
    path.write_text("optim:\n  generator: {lr: 1e-4, eps: 1E-8}\n  discriminator:\n    lr: 2E-4\n"
                    "loss:\n  mel_weight: 1e+3\n  fm_weight: .5\naudio:\n  fmin: -0\n"
                    "faults:\n  watchdog_minutes: inf\n")
    cfg = load_config(path)
    assert _values(cfg) == {key: value for key, (_, value) in TYPED.items()}
    assert cfg.faults.watchdog_minutes == 0.0
    # The saved config says the same in YAML's own spelling, and reads back alike.
    assert load_config(_saved(tmp_path, dump_config(cfg))) == cfg


def _saved(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "saved.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text", ["inf", "Inf", ".inf", "+inf", "infinity"])
def test_inf_means_off_where_a_field_has_an_off(text: str) -> None:
    overrides = [f"{key}={text}" for key in INFINITY_MEANS_OFF]
    cfg = load_config(None, overrides)
    assert (cfg.optim.generator.grad_clip, cfg.optim.discriminator.grad_clip) == (None, None)
    assert (cfg.faults.watchdog_minutes, cfg.log.val_every_minutes) == (0.0, 0.0)


@pytest.mark.parametrize(("override", "message"), [
    ("loss.mel_weight=inf", "loss.mel_weight: expected a finite number, got inf (inf only for"),
    ("optim.generator.grad_clip=-inf", "expected a finite number, got -inf"),
    ("optim.generator.eps=.nan", "optim.generator.eps: expected a finite number, got nan"),
    ("optim.generator.lr=nan", "optim.generator.lr: expected a number, got 'nan'"),
    ("optim.generator.lr=1e", "optim.generator.lr: expected a number, got '1e'"),
    ("optim.generator.lr=e-4", "optim.generator.lr: expected a number, got 'e-4'"),
    ("optim.generator.lr=fast", "optim.generator.lr: expected a number, got 'fast'"),
])
def test_what_is_not_a_number_is_still_refused(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert message in str(err.value)


def test_integers_and_strings_keep_their_types() -> None:
    # Only float fields read number-strings: an int field still refuses 1e3, a string stays a string.
    with pytest.raises(ConfigError, match="train.max_steps: expected an integer, got '1e3'"):
        load_config(None, ["train.max_steps=1e3"])
    assert load_config(None, ["data.shards=1e-4"]).data.shards == "1e-4"
    assert not math.isinf(load_config(None, []).faults.watchdog_minutes)


def test_the_command_line_takes_1e_4(tmp_path: Path) -> None:
    """What the issue typed: ``distgan train ... optim.generator.lr=1e-4``, through the real CLI."""
    done = run_distgan(["train", "--config", "configs/tiny.yaml", "--run-dir", str(tmp_path / "run"),
                        "optim.generator.lr=1e-4", "optim.discriminator.lr=2E-4", "train.max_steps=1",
                        "log.progress_bar=false", "log.val_every_steps=0", "data.num_workers=0",
                        "data.batch_size=1", "data.segment_samples=4096", "faults.watchdog_minutes=inf"],
                       timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    saved = load_config(tmp_path / "run" / "config.yaml")
    assert (saved.optim.generator.lr, saved.optim.discriminator.lr) == (1e-4, 2e-4)
