"""EnCodec's frequency-domain reconstruction loss, as audiocraft trains EnCodec (its ``msspec`` loss
in ``config/solver/compression/default.yaml``; the paper's eq. 1, ``l_f``).

``(fake, real)`` waveforms ``[B, 1, T]`` -> scalar. At each window ``w`` (``2^6 .. 2^10``; the paper
says ``2^5 .. 2^11``, audiocraft trains with these) a power mel spectrogram ``S_w`` (``n_mels`` 64
HTK bands from ``fmin`` 64 Hz, Hann window, hop ``w / 4``, the STFT normalised by the window's
L2 norm, frames uncentred over a reflect-padded clip that ends in whole frames), and

    l_f = 1 / (2 |windows|) x sum_w ( mean |S_w(x) - S_w(x_hat)| + mean (L_w(x) - L_w(x_hat))^2 )

with ``L_w = log10(floor + S_w)`` (``floor`` 1e-5): L1 on the power mels, L2 on their logs, each
per-element means, the sum divided by the number of terms (audiocraft's ``normalized: true``,
``alphas: false``). The L1 half weighs loud frames and the log half quiet ones; on speech it is of
order 1, so ``loss.mel_weight`` means what the paper's lambda_f does. Float32 whatever the caller's
precision.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchaudio.transforms import MelSpectrogram


class PowerMel(nn.Module):
    """Waveform ``[B, T]`` -> power mel ``[B, n_mels, ceil(T / hop)]`` at one window (see the module docstring)."""

    def __init__(self, sample_rate: int, window: int, n_mels: int, fmin: float) -> None:
        super().__init__()
        self.window, self.hop = window, window // 4
        with warnings.catch_warnings():
            # Empty low bands at the short windows are part of the recipe (audiocraft's too).
            warnings.filterwarnings("ignore", message=".*mel filterbank has all zero values.*")
            self.mel = MelSpectrogram(sample_rate=sample_rate, n_fft=window, win_length=window, hop_length=self.hop,
                                      f_min=fmin, n_mels=n_mels, window_fn=torch.hann_window, normalized=True,
                                      center=False, power=2.0)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        side = (self.window - self.hop) // 2
        wave = F.pad(wave.unsqueeze(1), (side, side), mode="reflect").squeeze(1)
        frames = math.ceil((wave.shape[-1] - self.window) / self.hop) + 1
        wave = F.pad(wave, (0, (frames - 1) * self.hop + self.window - wave.shape[-1]))
        return self.mel(wave)


class EncodecFrequencyLoss(nn.Module):
    def __init__(self, sample_rate: int, windows: Sequence[int], n_mels: int = 64, fmin: float = 64.0,
                 floor: float = 1e-5) -> None:
        super().__init__()
        self.floor = floor
        self.scales = nn.ModuleList(PowerMel(sample_rate, window, n_mels, fmin) for window in windows)

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        fake, real = fake.reshape(-1, fake.shape[-1]), real.reshape(-1, real.shape[-1])
        with torch.autocast(device_type=fake.device.type, enabled=False):
            fake, real = fake.float(), real.float()
            total = fake.new_zeros(())
            for scale in self.scales:
                fake_mel, real_mel = scale(fake), scale(real)
                total = total + F.l1_loss(fake_mel, real_mel)
                total = total + F.mse_loss(torch.log10(self.floor + fake_mel), torch.log10(self.floor + real_mel))
            return total / (2 * len(self.scales))
