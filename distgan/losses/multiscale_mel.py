"""BigVGAN v2's multi-scale mel loss: L1 between log-mels at seven STFT resolutions.

One mel resolution (HiFi-GAN's loss) trades time detail for frequency detail once and for all; seven
window lengths from 32 to 2048 samples, each with a mel filterbank sized to it (5 to 320 bands),
penalise errors at every trade-off (Kumar et al. 2023, descript-audio-codec, taken over by BigVGAN
v2 with weight 15). The recipe is NVIDIA's ``MultiScaleMelSpectrogramLoss`` (after audiotools'
``AudioSignal.mel_spectrogram``), so that losses compare with theirs:

- STFT with a periodic Hann window, hop a quarter of the window, ``center=True`` with reflect
  padding, magnitude without an epsilon (unlike ``distgan.losses.mel``);
- Slaney-normalised mel filterbank on the Slaney scale (librosa's default) over
  ``[fmin, fmax or sample_rate / 2]``;
- ``log10(clamp(mel, 1e-5) ** power)``, then the mean absolute difference per scale, summed over
  scales (unweighted).

Its ``mag_weight`` option (0 in BigVGAN) is left out. The long windows give some of the 320 low mel
bands no FFT bin at all; those bands are 0 in both spectrograms, clamp to the same floor and add
nothing to the loss, as in the reference.

Everything runs in float32 whatever the caller's precision (see ``distgan.losses.mel``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchaudio.functional import melscale_fbanks

N_MELS = (5, 10, 20, 40, 80, 160, 320)
WINDOW_LENGTHS = (32, 64, 128, 256, 512, 1024, 2048)
# Floor of the mel magnitude before the log, as in the reference.
CLAMP_EPS = 1e-5


class MelScale(nn.Module):
    """Waveform ``[B, T]`` -> float32 mel magnitude ``[B, n_mels, T / hop + 1]`` at one resolution."""

    window: torch.Tensor
    filterbank: torch.Tensor

    def __init__(self, sample_rate: int, window_length: int, n_mels: int, fmin: float = 0.0,
                 fmax: float | None = None) -> None:
        super().__init__()
        self.window_length = window_length
        self.hop_length = window_length // 4
        with warnings.catch_warnings():
            # Empty low bands at long windows are part of the recipe (see the module docstring).
            warnings.filterwarnings("ignore", message=".*mel filterbank has all zero values.*")
            fbank = melscale_fbanks(n_freqs=window_length // 2 + 1, f_min=float(fmin),
                                    f_max=float(sample_rate / 2 if fmax is None else fmax), n_mels=n_mels,
                                    sample_rate=sample_rate, norm="slaney", mel_scale="slaney")
        self.register_buffer("window", torch.hann_window(window_length), persistent=False)
        self.register_buffer("filterbank", fbank.T.contiguous(), persistent=False)  # [n_mels, n_freqs]

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave, n_fft=self.window_length, hop_length=self.hop_length, window=self.window.float(),
                          center=True, pad_mode="reflect", return_complex=True)
        return torch.matmul(self.filterbank.float(), spec.abs())


class MultiScaleMelLoss(nn.Module):
    """``(fake, real)`` waveforms ``[B, 1, T]`` or ``[B, T]`` -> scalar: sum over scales of ``mean |log-mel difference|``.

    ``n_mels``, ``window_lengths``, ``fmin`` and ``fmax`` have one entry per scale (``fmax`` None:
    ``sample_rate / 2``); the defaults are BigVGAN v2's. ``T`` must exceed half the longest window
    (reflect padding). Buffers are non-persistent: the loss holds no state worth a checkpoint.
    """

    def __init__(self, sample_rate: int, n_mels: Sequence[int] = N_MELS,
                 window_lengths: Sequence[int] = WINDOW_LENGTHS, fmin: Sequence[float] | None = None,
                 fmax: Sequence[float | None] | None = None, clamp_eps: float = CLAMP_EPS, power: float = 1.0) -> None:
        super().__init__()
        fmin = [0.0] * len(window_lengths) if fmin is None else list(fmin)
        fmax = [None] * len(window_lengths) if fmax is None else list(fmax)
        if not len(n_mels) == len(window_lengths) == len(fmin) == len(fmax):
            raise ValueError("n_mels, window_lengths, fmin and fmax need one entry per scale")
        self.clamp_eps = clamp_eps
        self.power = power
        self.scales = nn.ModuleList(
            MelScale(sample_rate, window, bands, low, high)
            for bands, window, low, high in zip(n_mels, window_lengths, fmin, fmax, strict=True)
        )

    def log_mel(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.log10(mel.clamp(min=self.clamp_eps).pow(self.power))

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        fake, real = _flat(fake), _flat(real)
        with torch.autocast(device_type=fake.device.type, enabled=False):
            fake, real = fake.float(), real.float()
            terms = [F.l1_loss(self.log_mel(scale(fake)), self.log_mel(scale(real))) for scale in self.scales]
            return torch.stack(terms).sum()


def _flat(wave: torch.Tensor) -> torch.Tensor:
    """``[B, 1, T]`` or ``[B, T]`` -> ``[B, T]``."""
    if wave.dim() == 3 and wave.shape[1] == 1:
        return wave.squeeze(1)
    if wave.dim() != 2:
        raise ValueError(f"expected a waveform [B, T] or [B, 1, T], got {tuple(wave.shape)}")
    return wave
