"""``distgan export``: plain fp32 safetensors with the config inside and in a YAML file beside it."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open

from distgan import cli
from distgan.checkpoint.format import open_checkpoint
from distgan.checkpoint.weights import EXPORT_CONFIG_KEY, generator_state_dict
from distgan.config import load_config
from tests.inference.helpers import TRAINED_STEPS
from tests.train.helpers import TINY, checkpoints, run_distgan


def test_export_writes_weights_without_weight_norm_and_the_config(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "models" / "tiny.safetensors"
    done = run_distgan(["export", str(tiny_run), str(out)])
    assert f"wrote {out}" in done.stdout
    cfg = load_config(TINY)
    expected = {"audio": dataclasses.asdict(cfg.audio), "generator": dataclasses.asdict(cfg.model.generator)}

    with safe_open(str(out), framework="pt") as f:
        metadata = f.metadata()
        tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - safe_open is not a dict
    assert json.loads(metadata[EXPORT_CONFIG_KEY]) == expected
    assert metadata["step"] == str(TRAINED_STEPS)
    assert not [key for key in tensors if "parametrizations" in key]
    assert {tensor.dtype for tensor in tensors.values()} == {torch.float32}
    # Every training parameter is in the export, folded: 'x.parametrizations.weight.original0/1' -> 'x.weight'.
    (checkpoint,) = checkpoints(tiny_run)
    trained = {key.replace(".parametrizations.weight.original0", ".weight")
               for key in generator_state_dict(open_checkpoint(checkpoint)) if not key.endswith("original1")}
    assert set(tensors) == trained

    beside = yaml.safe_load(out.with_suffix(".yaml").read_text())
    assert beside == {**expected, "step": TRAINED_STEPS}


def test_export_needs_a_safetensors_name(tiny_run: Path, tmp_path: Path, capsys) -> None:
    assert cli.main(["export", str(tiny_run), str(tmp_path / "tiny.pt")]) == 2
    assert "must end in .safetensors" in capsys.readouterr().out
    assert not (tmp_path / "tiny.pt").exists()


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_the_export_and_its_yaml_follow_the_umask(tiny_run: Path, tmp_path: Path, umask: int) -> None:
    from distgan.inference.export import export_generator

    before = os.umask(umask)
    try:
        out = export_generator(tiny_run, tmp_path / "shared.safetensors")
    finally:
        os.umask(before)
    modes = {path.suffix: stat.S_IMODE(path.stat().st_mode) for path in (out, out.with_suffix(".yaml"))}
    assert modes == {".safetensors": 0o666 & ~umask, ".yaml": 0o666 & ~umask}
