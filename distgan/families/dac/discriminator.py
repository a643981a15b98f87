"""DAC's discriminator (``dac.model.Discriminator``): MPD and the multi-band complex-STFT
discriminator, on clips with their DC offset removed and peak-normalised to 0.8.

``[B, 1, T]`` -> ``([logits] * (periods + windows), [[feature maps]] * ...)``, MPD's first:

- MPD is distgan's (``distgan.models.discriminators.PeriodDiscriminator``, HiFi-GAN's layers),
  with DAC's padding: a whole period also when ``T`` is a multiple of it (``always_pad``);
- the multi-band STFT discriminator is ``distgan.models.multiband``'s (shared with Vocos) as DAC
  sets it: audiotools' ``match_stride`` STFT, first-layer feature maps kept;
- the normalisation is done once here, for both (DAC's ``preprocess``); DAC's MSD (``rates``) is
  empty in every released configuration and is not offered.

DAC's state dict wraps each convolution with its leaky ReLU (``convs.0.0.weight_g``);
``REFERENCE_RENAMES`` maps those keys to these modules' (``convs.0.weight``...).
"""

from __future__ import annotations

import torch
from torch import nn

from distgan.models.discriminators import PeriodDiscriminator
from distgan.models.layers import SetOutput, mono_batch
from distgan.models.multiband import MultiBandSTFTDiscriminator, peak_normalize


class DACDiscriminator(nn.Module):
    REFERENCE_RENAMES = ((r"^(discriminators\.\d+\.convs\.\d+)\.0\.", r"\1."),
                         (r"^(discriminators\.\d+\.band_convs\.\d+\.\d+)\.0\.", r"\1."))
    REFERENCE_EXPORT_RENAMES = ((r"^(discriminators\.\d+\.convs\.\d+)\.", r"\1.0."),
                                (r"^(discriminators\.\d+\.band_convs\.\d+\.\d+)\.", r"\1.0."))

    def __init__(self, periods: list[int], fft_sizes: list[int], bands: list[list[float]],
                 mpd_channels: list[int], mrd_channels: int = 32) -> None:
        super().__init__()
        bands_ = tuple((float(low), float(high)) for low, high in bands)
        self.discriminators = nn.ModuleList(
            [PeriodDiscriminator(p, list(mpd_channels), always_pad=True) for p in periods]
            + [MultiBandSTFTDiscriminator(w, mrd_channels, bands=bands_, match_stride=True) for w in fft_sizes])

    def forward(self, wave: torch.Tensor) -> SetOutput:
        wave = peak_normalize(mono_batch(wave))
        logits, feats = [], []
        for d in self.discriminators:
            logit, feat = d(wave)
            logits.append(logit)
            feats.append(feat)
        return logits, feats
