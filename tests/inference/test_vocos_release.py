"""Vocos's release folder (``config.yaml`` + ``pytorch_model.bin``, as Hugging Face hosts
``charactr/vocos-mel-24khz``), both ways, against the ``vocos`` package (parity extra):

- ``distgan export --format vocos`` writes a folder that ``vocos.Vocos.from_hparams`` plus a strict
  ``load_state_dict`` loads, and it sounds the same as distgan's vocoder;
- ``train.init_from`` a folder written by vocos' own classes reads its weights (weights-only):
  a run at learning rate 1e-12 keeps them (to fp noise), and its vocoder sounds the same as vocos'.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from distgan.inference.export_release import export_release
from distgan.inference.load import load_generator
from tests.train.helpers import REPO_ROOT, checkpoints, run_distgan, train_args

vocos = pytest.importorskip("vocos", reason="the vocos reference package is not installed")

VOCOS_TINY = REPO_ROOT / "configs" / "vocos_tiny.yaml"
ATOL = 1e-5


def clip(samples: int = 24 * 256) -> torch.Tensor:
    t = torch.arange(samples) / 24000
    return (0.5 * torch.sin(2 * torch.pi * 220 * t) + 0.05 * torch.randn(samples, generator=torch.Generator().manual_seed(0)))[None]


@pytest.mark.slow
def test_export_loads_in_vocos_and_sounds_the_same(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_distgan(train_args(run, "train.max_steps=2", config=VOCOS_TINY), launcher=None)
    paths = export_release(run, tmp_path / "release", "vocos")
    assert sorted(p.name for p in paths) == ["config.yaml", "pytorch_model.bin"]
    reference = vocos.Vocos.from_hparams(str(tmp_path / "release" / "config.yaml"))
    reference.load_state_dict(torch.load(tmp_path / "release" / "pytorch_model.bin", weights_only=True))
    reference.eval()
    wave = clip()
    with torch.no_grad():
        theirs = reference(wave)
    ours = load_generator(run).resynthesize(wave)
    assert ours.shape == theirs.shape == wave.shape
    torch.testing.assert_close(ours, theirs, rtol=0, atol=ATOL)


def _vocos_release(folder: Path) -> torch.nn.Module:
    """A folder as vocos' own code makes one: its config.yaml and a fresh model's state dict."""
    folder.mkdir()
    tiny = yaml.safe_load(VOCOS_TINY.read_text())["model"]["generator"]
    config = {
        "feature_extractor": {"class_path": "vocos.feature_extractors.MelSpectrogramFeatures", "init_args": {
            "sample_rate": 24000, "n_fft": 1024, "hop_length": 256, "n_mels": 100, "padding": "center"}},
        "backbone": {"class_path": "vocos.models.VocosBackbone", "init_args": {
            "input_channels": 100, "dim": tiny["dim"], "intermediate_dim": tiny["intermediate_dim"],
            "num_layers": tiny["num_layers"]}},
        "head": {"class_path": "vocos.heads.ISTFTHead", "init_args": {
            "dim": tiny["dim"], "n_fft": 1024, "hop_length": 256, "padding": "center"}}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    torch.manual_seed(3)
    model = vocos.Vocos.from_hparams(str(folder / "config.yaml")).eval()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return model


@pytest.mark.slow
def test_init_from_a_vocos_release_reads_its_weights(tmp_path: Path) -> None:
    reference = _vocos_release(tmp_path / "release")
    run = tmp_path / "run"
    run_distgan(train_args(run, "train.max_steps=1", f"train.init_from={tmp_path / 'release'}",
                           "optim.generator.lr=1.0e-12", "optim.discriminator.lr=1.0e-12", config=VOCOS_TINY), launcher=None)
    assert checkpoints(run)
    wave = clip()
    with torch.no_grad():
        theirs = reference(wave)
    torch.testing.assert_close(load_generator(run).resynthesize(wave), theirs, rtol=0, atol=ATOL)


@pytest.mark.slow
def test_init_from_refuses_a_release_of_other_settings(tmp_path: Path) -> None:
    _vocos_release(tmp_path / "release")
    done = run_distgan(train_args(tmp_path / "run", "train.max_steps=1", f"train.init_from={tmp_path / 'release'}",
                                  "model.generator.dim=32", config=VOCOS_TINY), launcher=None, check=False)
    assert done.returncode != 0
    assert "config.yaml backbone.init_args.dim=64 but model.generator.dim=32" in done.stdout + done.stderr
