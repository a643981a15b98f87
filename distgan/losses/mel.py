"""HiFi-GAN's log-mel spectrogram: the generator's input and the space of its mel loss.

The recipe follows HiFi-GAN's ``meldataset.py`` so that mels computed here match what TTS models
trained against HiFi-GAN produce: reflect-pad by ``(n_fft - hop) / 2`` on each side, STFT with
``center=False`` (so ``T`` samples give exactly ``T // hop`` frames and frame ``i`` is centred on
sample ``i * hop + hop / 2``), magnitude with a tiny epsilon under the square root (a finite gradient
where the spectrum is exactly zero, e.g. digital silence), a Slaney-normalised mel filterbank on the
Slaney scale (librosa's default), and ``log(clamp(mel, 1e-5))``.

Everything runs in float32 whatever the caller's precision: under bf16 the log-mel of quiet frames
would lose most of its resolution, and the mel loss (weight 45) would be dominated by that noise.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchaudio.functional import melscale_fbanks

from distgan.config import AudioConfig

# Floor of the mel energy before the log; log(1e-5) is the log-mel of silence.
LOG_MEL_FLOOR = 1e-5
# Added to |STFT|^2 before the square root, as HiFi-GAN does.
MAGNITUDE_EPS = 1e-9


class MelSpectrogram(nn.Module):
    """Waveform ``[B, T]`` or ``[B, 1, T]`` -> float32 log-mel ``[B, n_mels, T // hop_length]``.

    ``fmax="audio"`` takes ``audio.fmax`` (the model-input band); ``None`` means the full band up to
    ``sample_rate / 2``. ``T`` must exceed ``(n_fft - hop_length) / 2`` for the reflect padding.
    The window and filterbank are non-persistent buffers: they follow ``.to(device)`` but stay out of
    state dicts, so checkpoints hold only learned weights.
    """

    window: torch.Tensor
    filterbank: torch.Tensor

    def __init__(self, audio: AudioConfig, fmax: float | None | Literal["audio"] = "audio") -> None:
        super().__init__()
        self.n_fft = audio.n_fft
        self.hop_length = audio.hop_length
        self.win_length = audio.win_length
        self.pad = (audio.n_fft - audio.hop_length) // 2
        top = audio.fmax if fmax == "audio" else fmax
        self.fmax = float(audio.sample_rate / 2 if top is None else top)
        fbank = melscale_fbanks(
            n_freqs=audio.n_fft // 2 + 1,
            f_min=float(audio.fmin),
            f_max=self.fmax,
            n_mels=audio.n_mels,
            sample_rate=audio.sample_rate,
            norm="slaney",
            mel_scale="slaney",
        )  # [n_freqs, n_mels]
        self.register_buffer("window", torch.hann_window(audio.win_length), persistent=False)
        self.register_buffer("filterbank", fbank.T.contiguous(), persistent=False)  # [n_mels, n_freqs]

    @classmethod
    def for_loss(cls, audio: AudioConfig) -> MelSpectrogram:
        """The mel of the generator's L1 loss, over ``audio.fmax_loss`` (HiFi-GAN: the full band)."""
        return cls(audio, fmax=audio.fmax_loss)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() == 3:
            if wave.shape[1] != 1:
                raise ValueError(f"expected a mono waveform [B, 1, T], got {tuple(wave.shape)}")
            wave = wave.squeeze(1)
        if wave.dim() != 2:
            raise ValueError(f"expected a waveform [B, T] or [B, 1, T], got {tuple(wave.shape)}")
        with torch.autocast(device_type=wave.device.type, enabled=False):
            wave = wave.float()
            # F.pad's reflect mode wants a channel dimension.
            padded = F.pad(wave.unsqueeze(1), (self.pad, self.pad), mode="reflect").squeeze(1)
            spec = torch.stft(
                padded,
                n_fft=self.n_fft,
                hop_length=self.hop_length,
                win_length=self.win_length,
                window=self.window.float(),
                center=False,
                return_complex=True,
            )  # [B, n_freqs, frames]
            magnitude = torch.sqrt(spec.real.square() + spec.imag.square() + MAGNITUDE_EPS)
            mel = torch.matmul(self.filterbank.float(), magnitude)  # [B, n_mels, frames]
            return torch.log(torch.clamp(mel, min=LOG_MEL_FLOOR))
