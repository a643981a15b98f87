"""``distgan.load_generator``: a ready-to-run vocoder from a run, a checkpoint or an export."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch.nn.utils import parametrize

import distgan
from distgan.config import load_config
from distgan.inference.export import export_generator
from distgan.inference.load import Vocoder, load_checkpoint_generator
from distgan.losses.mel import MelSpectrogram
from tests.inference.helpers import HOP_LENGTH, N_MELS, TRAINED_STEPS, val_clips
from tests.train.helpers import REPO_ROOT, TINY, checkpoints, subprocess_env


@pytest.fixture(scope="module")
def mel() -> torch.Tensor:
    """Log-mels [2, n_mels, 40] of two real validation clips, as a TTS model would hand them over."""
    front_end = MelSpectrogram(load_config(TINY).audio)
    waves = [wave[: 40 * HOP_LENGTH] for wave in list(val_clips().values())[:2]]
    return front_end(torch.stack(waves))


def test_load_generator_is_ready_to_run(tiny_run: Path, mel: torch.Tensor) -> None:
    vocoder = distgan.load_generator(tiny_run)
    assert isinstance(vocoder, Vocoder)
    assert not any(module.training for module in vocoder.modules())
    assert not any(parametrize.is_parametrized(module) for module in vocoder.modules())
    assert not any("parametrizations" in name for name, _ in vocoder.named_parameters())

    wave = vocoder(mel)
    assert wave.shape == (2, 40 * HOP_LENGTH)

    # The generator as training left it: weight norm in place.
    generator, cfg, step = load_checkpoint_generator(tiny_run)
    assert step == TRAINED_STEPS
    assert sum(parametrize.is_parametrized(module) for module in generator.modules()) > 10
    assert vocoder.audio == cfg.audio
    with torch.no_grad():
        expected = generator.eval()(mel).squeeze(1)
    assert wave.abs().max() > 1e-3  # a real signal, so the comparison below means something
    torch.testing.assert_close(wave, expected, rtol=0, atol=1e-6)


def test_run_dir_checkpoint_and_export_load_the_same_model(tiny_run: Path, mel: torch.Tensor,
                                                           tmp_path: Path) -> None:
    (checkpoint,) = checkpoints(tiny_run)
    exported = export_generator(tiny_run, tmp_path / "tiny.safetensors")
    outputs = {source.name: distgan.load_generator(source)(mel) for source in (tiny_run, checkpoint, exported)}
    reference = outputs.pop(tiny_run.name)
    for name, wave in outputs.items():
        torch.testing.assert_close(wave, reference, rtol=0, atol=1e-7, msg=name)
    assert distgan.load_generator(exported).audio == load_config(TINY).audio


def test_import_distgan_does_not_import_torch(tiny_run: Path) -> None:
    code = ("import sys, distgan\n"
            "assert 'torch' not in sys.modules, 'import distgan imported torch'\n"
            "vocoder = distgan.load_generator(sys.argv[1])\n"
            "print(type(vocoder).__name__, vocoder.training, vocoder.audio.n_mels)\n")
    done = subprocess.run([sys.executable, "-c", code, str(tiny_run)], cwd=REPO_ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Vocoder", "False", str(N_MELS)]
    with pytest.raises(AttributeError, match="no attribute 'load_generater'"):
        distgan.load_generater  # noqa: B018 - a typo must not resolve to anything


def test_unusable_paths_are_errors_that_say_why(tiny_run: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        distgan.load_generator(tmp_path / "missing.safetensors")
    with pytest.raises(FileNotFoundError, match="neither a run directory"):
        distgan.load_generator(tmp_path)
    (checkpoint,) = checkpoints(tiny_run)
    unfinished = shutil.copytree(checkpoint, tmp_path / "unfinished")
    (unfinished / "COMPLETE").unlink()
    with pytest.raises(ValueError, match="incomplete checkpoint"):
        distgan.load_generator(unfinished)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, str(foreign))
    with pytest.raises(ValueError, match="not a distgan export"):
        distgan.load_generator(foreign)
