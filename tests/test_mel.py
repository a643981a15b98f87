"""The log-mel front end against a by-hand numpy computation, and its precision guarantees."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile
import torch

from distgan.config import AudioConfig
from distgan.losses.mel import LOG_MEL_FLOOR, MelSpectrogram

AUDIO = AudioConfig()


def reference_log_mel(wave: np.ndarray, audio: AudioConfig, fmax: float | None) -> np.ndarray:
    """HiFi-GAN's mel by hand in float64: reflect pad, framed FFT, magnitude, librosa filterbank, log."""
    pad = (audio.n_fft - audio.hop_length) // 2
    padded = np.pad(wave.astype(np.float64), (pad, pad), mode="reflect")
    window = np.zeros(audio.n_fft)
    offset = (audio.n_fft - audio.win_length) // 2
    window[offset:offset + audio.win_length] = np.hanning(audio.win_length + 1)[:-1]  # periodic Hann
    frames = 1 + (len(padded) - audio.n_fft) // audio.hop_length
    starts = np.arange(frames) * audio.hop_length
    framed = np.stack([padded[s:s + audio.n_fft] for s in starts]) * window  # [frames, n_fft]
    spectrum = np.fft.rfft(framed, axis=1)
    magnitude = np.sqrt(np.abs(spectrum) ** 2 + 1e-9).T  # [n_freqs, frames]
    fbank = librosa.filters.mel(sr=audio.sample_rate, n_fft=audio.n_fft, n_mels=audio.n_mels,
                                fmin=audio.fmin, fmax=fmax)  # Slaney scale and norm by default
    return np.log(np.maximum(fbank @ magnitude, LOG_MEL_FLOOR))


def chirp(seconds: float = 1.0, sample_rate: int = 22050) -> np.ndarray:
    """A 0.5-amplitude exponential sweep 60 Hz -> 10 kHz over light noise (a realistic floor)."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0, f1 = 60.0, 10_000.0
    phase = 2 * np.pi * f0 * seconds / np.log(f1 / f0) * (np.exp(t / seconds * np.log(f1 / f0)) - 1)
    noise = np.random.default_rng(0).normal(0.0, 1e-3, t.shape)
    return (0.5 * np.sin(phase) + noise).astype(np.float32)


def max_log_error(wave: np.ndarray, mel: MelSpectrogram, fmax: float | None) -> float:
    ours = mel(torch.from_numpy(wave)[None])[0].numpy()
    expected = reference_log_mel(wave, AUDIO, fmax)
    assert ours.shape == expected.shape == (AUDIO.n_mels, len(wave) // AUDIO.hop_length)
    return float(np.abs(ours - expected).max())


def test_filterbank_is_librosas_slaney_filterbank() -> None:
    expected = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80, fmin=0.0, fmax=8000.0)
    assert np.abs(MelSpectrogram(AUDIO).filterbank.numpy() - expected).max() < 1e-6


@pytest.mark.parametrize("which", ["input", "loss"])
def test_matches_reference_on_a_chirp(which: str) -> None:
    mel = MelSpectrogram(AUDIO) if which == "input" else MelSpectrogram.for_loss(AUDIO)
    fmax = AUDIO.fmax if which == "input" else None
    assert max_log_error(chirp(), mel, fmax) < 1e-3


def test_matches_reference_on_real_speech(ljspeech_mini: Path) -> None:
    wave, sample_rate = soundfile.read(ljspeech_mini / "wavs" / "LJ001-0001.wav", dtype="float32")
    assert sample_rate == AUDIO.sample_rate
    assert max_log_error(wave[:3 * sample_rate], MelSpectrogram(AUDIO), AUDIO.fmax) < 1e-3


@pytest.mark.parametrize("length", [8192, 8193, 8192 + 255, 1000])
def test_frame_count_is_length_over_hop(length: int) -> None:
    mel = MelSpectrogram(AUDIO)
    wave = torch.randn(2, length)
    out = mel(wave)
    assert out.shape == (2, AUDIO.n_mels, length // AUDIO.hop_length)
    assert torch.equal(mel(wave.unsqueeze(1)), out)


def test_loss_band_is_full_band() -> None:
    assert MelSpectrogram(AUDIO).fmax == 8000.0
    assert MelSpectrogram.for_loss(AUDIO).fmax == AUDIO.sample_rate / 2
    # The top input band stops at 8 kHz; the top loss band reaches above it.
    freqs = np.linspace(0, AUDIO.sample_rate / 2, AUDIO.n_fft // 2 + 1)
    top_input = freqs[MelSpectrogram(AUDIO).filterbank[-1].numpy() > 0].max()
    top_loss = freqs[MelSpectrogram.for_loss(AUDIO).filterbank[-1].numpy() > 0].max()
    assert top_input <= 8000.0 < top_loss
    custom = MelSpectrogram(dataclasses.replace(AUDIO, fmax_loss=6000.0), fmax=None)
    assert custom.fmax == AUDIO.sample_rate / 2


def test_bf16_input_gives_float32_close_to_fp32() -> None:
    mel = MelSpectrogram(AUDIO)
    wave = torch.from_numpy(chirp(0.5))[None]
    rounded = wave.to(torch.bfloat16)
    out = mel(rounded)
    assert out.dtype == torch.float32
    # Exactly the float32 computation on the bf16-rounded samples ...
    torch.testing.assert_close(out, mel(rounded.float()), rtol=0, atol=0)
    # ... whose rounding noise (about -50 dB of the peak) leaves the strong bins where they were:
    # within 30 dB of the loudest bin, the log-mel moves by less than 1 %.
    full = mel(wave)
    strong = full > full.max() - 30 / 20 * np.log(10)
    assert strong.sum() > 100
    assert (out - full)[strong].abs().max() < 0.01


def test_autocast_does_not_lower_precision() -> None:
    mel = MelSpectrogram(AUDIO)
    wave = torch.from_numpy(chirp(0.5))[None]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = mel(wave)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, mel(wave), rtol=0, atol=1e-6)


def test_buffers_move_but_are_not_saved() -> None:
    mel = MelSpectrogram(AUDIO)
    assert mel.state_dict() == {}
    assert {name for name, _ in mel.named_buffers()} == {"window", "filterbank"}
    assert mel.to(torch.float64).window.dtype == torch.float64  # buffers follow .to()


def test_gradient_is_finite_on_digital_silence() -> None:
    wave = torch.zeros(1, 4096, requires_grad=True)
    out = MelSpectrogram(AUDIO)(wave)
    torch.testing.assert_close(out, torch.full_like(out, float(np.log(LOG_MEL_FLOOR))))
    (out.sum() + MelSpectrogram(AUDIO)(wave + 0.1 * torch.randn(1, 4096)).sum()).backward()
    assert wave.grad is not None and torch.isfinite(wave.grad).all()
