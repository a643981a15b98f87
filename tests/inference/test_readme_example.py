"""The README's "Using a trained model" code runs as printed, on a trained run and a wav file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import soundfile

from tests.conftest import REPO_ROOT


def test_the_readme_example_resynthesizes_a_wav(tiny_run: Path, tmp_path: Path, monkeypatch) -> None:
    code = re.search(r"```python\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.S).group(1)
    assert 'load_generator("runs/demo")' in code and "vocoder.encode(wave)" in code
    rate = 22050
    soundfile.write(tmp_path / "speech.wav", 0.3 * np.sin(np.arange(rate // 2) * 0.05), rate, subtype="PCM_16")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "demo").symlink_to(tiny_run)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    frames = scope["mel"].shape[-1]
    assert scope["mel"].shape[:2] == (1, 80) and scope["audio"].shape == (1, frames * 256)
    assert scope["vocoder"].audio.sample_rate == rate
