"""``distgan.inference.sample`` refuses what it cannot sample from, naming the run (the clips
themselves: ``tests/train/test_wavegan_train.py``, on a trained WaveGAN run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from distgan.inference.sample import load_noise_generator


def test_a_vocoder_run_is_refused(tiny_run: Path) -> None:
    with pytest.raises(ValueError, match=r"is a hifigan run: its generator turns mel spectrograms into audio"):
        load_noise_generator(tiny_run)
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        load_noise_generator(tiny_run / "missing")
