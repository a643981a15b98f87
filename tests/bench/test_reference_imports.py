"""The original packages' step runs where librosa and matplotlib are not installed (a bare GPU machine,
``distgan/bench/reference_imports.py``), and computes there what it computes with them."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest

from distgan.bench.reference_imports import slaney_mel
from tests.bench.test_reference_step import SMALL_BIGVGAN
from tests.train.helpers import REPO_ROOT

librosa = pytest.importorskip("librosa")
pytest.importorskip("bigvgan.bigvgan", reason="the bigvgan reference package is not installed")
pytest.importorskip("hifi_gan.models", reason="the hifi-gan reference package is not installed")


@pytest.mark.parametrize(("sr", "n_fft", "n_mels", "fmin", "fmax"),
                         [(22050, 1024, 80, 0.0, 8000.0), (22050, 1024, 80, 0.0, None), (24000, 2048, 320, 0.0, None),
                          (44100, 512, 40, 0.0, None)])
def test_the_stand_in_filterbank_is_librosas(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> None:
    expected = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    ours = slaney_mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    assert ours.shape == expected.shape and ours.dtype == np.float32
    assert np.abs(ours - expected).max() < 2e-5 * expected.max()  # torchaudio computes in float32
    assert np.array_equal(slaney_mel(sr, n_fft, n_mels, fmin, fmax), ours)  # hifi-gan's positional call


# What the originals compute with librosa's function (their mels; BigVGAN's multi-scale mel loss), seeded;
# run here and in a child that cannot import librosa or matplotlib. Building the models imports them.
STEP = """
import json, sys
if sys.argv[1] == "hide":
    class Hide:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("librosa", "matplotlib"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, Hide())
import torch
from distgan.bench.reference_step import ReferenceStep, build_models
from distgan.config import load_config
out = {}
for family, config, overrides in json.loads(sys.argv[2]):
    cfg = load_config(config, overrides)
    g, ds = build_models(cfg)
    step = ReferenceStep(cfg, g, ds, torch.device("cpu"))
    noise = torch.Generator().manual_seed(1)
    wave, other = (0.3 * torch.randn(1, cfg.data.segment_samples, generator=noise) for _ in range(2))
    mel, _, target = step.prepare(wave)
    out[family] = {"mel": float(mel.sum()), "target": float(target.sum())}
    if step.multiscale is not None:
        out[family]["multiscale"] = float(step.multiscale(wave.unsqueeze(1), other.unsqueeze(1)))
out["stand_ins"] = sorted(m for m in ("librosa", "matplotlib") if "stand-in" in (sys.modules[m].__doc__ or ""))
print(json.dumps(out))
"""


def _run(mode: str, runs: list) -> dict:
    """The step's losses per family: in a child (``hide``: one that cannot import librosa or
    matplotlib), or in this process (``keep``)."""
    if mode == "keep":
        out = io.StringIO()
        with contextlib.redirect_stdout(out), mock.patch.object(sys, "argv", ["-c", mode, json.dumps(runs)]):
            exec(STEP, {})
        return json.loads(out.getvalue().strip().splitlines()[-1])
    done = subprocess.run([sys.executable, "-c", STEP, mode, json.dumps(runs)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_originals_build_and_compute_their_mels_without_librosa_and_matplotlib() -> None:
    small_hifigan = ["data.batch_size=1", "data.segment_samples=2048", "model.generator.upsample_initial_channel=16",
                     "model.generator.resblock_kernel_sizes=[3]", "model.generator.resblock_dilation_sizes=[[1,3,5]]"]
    runs = [("hifigan", str(REPO_ROOT / "configs" / "hifigan_v1.yaml"), small_hifigan),
            ("bigvgan", str(REPO_ROOT / "configs" / "bigvgan_tiny.yaml"), SMALL_BIGVGAN)]
    with_them, without = _run("keep", runs), _run("hide", runs)
    assert with_them.pop("stand_ins") == [] and without.pop("stand_ins") == ["librosa", "matplotlib"]
    assert with_them["bigvgan"].keys() == {"mel", "target", "multiscale"}
    for family in ("hifigan", "bigvgan"):
        assert without[family].keys() == with_them[family].keys()
        for name, value in with_them[family].items():
            assert without[family][name] == pytest.approx(value, rel=1e-5), (family, name)
