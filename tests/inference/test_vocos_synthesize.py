"""``distgan synthesize``'s batching with a Vocos generator, whose ``center`` ISTFT head gives
``(frames - 1) * hop`` samples: batched output equals one-at-a-time output at that length, and a
wav of ``n * hop`` samples comes back at its own length."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from distgan.config import load_config
from distgan.families import build_generator
from distgan.inference.load import Vocoder
from distgan.inference.synthesize import Item, synthesize
from tests.train.helpers import REPO_ROOT

FRAMES = [37, 90, 64, 12]


def test_vocos_batched_output_equals_one_at_a_time() -> None:
    cfg = load_config(REPO_ROOT / "configs" / "vocos_tiny.yaml")
    torch.manual_seed(0)
    vocoder = Vocoder(build_generator(cfg.model.generator, cfg.audio).eval(), cfg.audio, cfg.model.generator)
    hop = cfg.audio.hop_length
    t = torch.arange(max(FRAMES) * hop) / cfg.audio.sample_rate
    wave = 0.5 * torch.sin(2 * torch.pi * 330 * t) + 0.05 * torch.randn(t.shape)
    mels = [vocoder.encode(wave[None, : (frames - 1) * hop])[0] for frames in FRAMES]
    assert [mel.shape[-1] for mel in mels] == FRAMES
    items = [Item(Path(f"clip{i}.npy"), mel) for i, mel in enumerate(mels)]
    cpu = torch.device("cpu")
    alone = synthesize(vocoder, items, batch_size=1, device=cpu)
    for batch_size in (2, len(items)):
        batched = synthesize(vocoder, items, batch_size=batch_size, device=cpu)
        for frames, one, many in zip(FRAMES, alone, batched, strict=True):
            assert len(one) == len(many) == (frames - 1) * hop
            assert np.abs(one).max() > 1e-3
            np.testing.assert_allclose(many, one, rtol=0, atol=1e-5)
