"""loss.mel picks the generator's mel loss: HiFi-GAN's single-scale L1 or BigVGAN v2's multi-scale one."""

from __future__ import annotations

import torch

from distgan.config import load_config
from distgan.losses import gan as losses
from distgan.losses.mel import MelSpectrogram
from distgan.losses.mel_loss import build_mel_loss
from distgan.losses.multiscale_mel import MultiScaleMelLoss
from tests.conftest import REPO_ROOT

CONFIGS = REPO_ROOT / "configs"


def waves() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    real = 0.3 * torch.randn(2, 4096)
    return (real + 0.05 * torch.randn(2, 4096)).unsqueeze(1), real  # fake [B, 1, T] as G gives it


def test_single_is_hifigans_mel_l1() -> None:
    cfg = load_config(CONFIGS / "tiny.yaml")
    fake, real = waves()
    mel = MelSpectrogram.for_loss(cfg.audio)
    expected = losses.mel_l1_loss(mel(real), mel(fake.squeeze(1)))
    assert build_mel_loss(cfg)(fake, real) == expected
    assert build_mel_loss(cfg, mel)(fake, real) == expected


def test_multiscale_is_bigvgan_v2s_loss_over_the_loss_band() -> None:
    cfg = load_config(CONFIGS / "bigvgan_tiny.yaml")
    fake, real = waves()
    criterion = build_mel_loss(cfg)
    assert isinstance(criterion, MultiScaleMelLoss) and len(criterion.scales) == 7
    assert criterion(fake, real) == MultiScaleMelLoss(cfg.audio.sample_rate)(fake, real)
    narrow = build_mel_loss(load_config(CONFIGS / "bigvgan_tiny.yaml", ["audio.fmax_loss=4000"]))
    assert narrow(fake, real) != criterion(fake, real)
    assert criterion(real.unsqueeze(1), real) == 0
