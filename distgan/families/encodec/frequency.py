"""EnCodec's frequency-domain reconstruction loss (Défossez et al. 2022, eq. 1, ``l_f``).

``(fake, real)`` waveforms ``[B, 1, T]`` -> scalar: at each window ``w`` (the paper: ``2^5 .. 2^11``)
the mel spectrogram ``S_w`` (``n_mels`` bands, 64 in the paper) of an STFT with hop ``w / 4``, and

    l_f = 1 / |windows| x sum_w ( mean |S_w(x) - S_w(x_hat)| + alpha x mean (S_w(x) - S_w(x_hat))^2 )

with ``alpha`` 1 (the paper's). The mel magnitude is ``distgan.losses.multiscale_mel.MelScale``'s
(periodic Hann window, centred reflect-padded frames, Slaney mel filterbank over the full band),
divided by ``sqrt(w)``: the paper's "normalized STFT", as ``torch.stft(normalized=True)`` scales it,
so each scale's magnitudes are comparable whatever its window. The paper says neither the norm
of the L2 term (taken here as the mean square, so both terms are per-element means) nor the mel
scale; these are distgan's choices. Float32 whatever the caller's precision.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from distgan.losses.multiscale_mel import MelScale


class EncodecFrequencyLoss(nn.Module):
    def __init__(self, sample_rate: int, windows: Sequence[int], n_mels: int = 64, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha
        self.scales = nn.ModuleList(MelScale(sample_rate, window, n_mels) for window in windows)

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        fake, real = fake.reshape(-1, fake.shape[-1]), real.reshape(-1, real.shape[-1])
        with torch.autocast(device_type=fake.device.type, enabled=False):
            fake, real = fake.float(), real.float()
            terms = []
            for scale in self.scales:
                norm = scale.window_length ** -0.5
                fake_mel, real_mel = scale(fake) * norm, scale(real) * norm
                terms.append(F.l1_loss(fake_mel, real_mel) + self.alpha * F.mse_loss(fake_mel, real_mel))
            return torch.stack(terms).mean()
