"""Speech-quality metrics against cases with known answers.

Synthetic speech-like clips (harmonic syllables with a gliding f0, separated by noise bursts) run
everywhere; PESQ/STOI on a real LJSpeech clip run where ../shared is present. Each degradation is
scored once per module (pYIN is the slow part) and the tests assert on those scores.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from distgan.config import AudioConfig
from distgan.evaluation import metrics
from distgan.evaluation.metrics import (
    F0_METRICS,
    METRICS,
    MetricUnavailable,
    available_metrics,
    f0_metrics,
    mel_l1,
    mrstft_distance,
    pesq_wb,
    score,
    stoi,
    summarize,
)

SAMPLE_RATE = 22050
AUDIO = AudioConfig(sample_rate=SAMPLE_RATE)
SEMITONE = 2 ** (1 / 12)

needs_mel = pytest.mark.skipif(
    importlib.util.find_spec("distgan.losses.mel") is None, reason="distgan/losses/mel.py is not written yet"
)


def speech_like(seconds: float = 2.0, f0_hz: float = 140.0, seed: int = 0) -> np.ndarray:
    """0.3 s voiced syllables (30 harmonics, f0 gliding +-10 %) alternating with 0.1 s fricative noise.

    Scaling ``f0_hz`` scales the whole contour, so two clips differ by exactly that pitch ratio while
    their noise bursts (same seed) and voicing stay the same.
    """
    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = f0_hz * (1 + 0.1 * np.sin(2 * np.pi * 1.5 * time))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    harmonics = np.arange(1, 31)[:, None]
    below_nyquist = harmonics * f0 < SAMPLE_RATE / 2
    voiced_wave = (np.sin(harmonics * phase) / harmonics * below_nyquist).sum(axis=0)
    in_syllable = (time % 0.4) < 0.3
    # Raised-cosine gates: hard switching would add clicks that no vocoder makes.
    ramp = np.hanning(int(0.02 * SAMPLE_RATE))
    voiced_gate = np.convolve(in_syllable, ramp / ramp.sum(), mode="same")
    fricative = np.diff(rng.standard_normal(len(time) + 1)) * 0.05
    noise_gate = np.convolve(~in_syllable, ramp / ramp.sum(), mode="same")
    clip = voiced_wave * voiced_gate + fricative * noise_gate
    return (0.5 * clip / np.abs(clip).max()).astype(np.float32)


def add_noise(clean: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(clean))
    noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (clean + noise).astype(np.float32)


def delay(clean: np.ndarray, milliseconds: float) -> np.ndarray:
    shift = round(milliseconds * SAMPLE_RATE / 1000)
    return np.concatenate([np.zeros(shift, np.float32), clean[:-shift]])


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return speech_like()


@pytest.fixture(scope="module")
def scores(clean: np.ndarray) -> dict[str, dict[str, float | None]]:
    degraded = {
        "identical": clean,
        "delay_5ms": delay(clean, 5),
        "snr_30db": add_noise(clean, 30),
        "snr_10db": add_noise(clean, 10),
        "snr_0db": add_noise(clean, 0),
    }
    return {label: score(clean, est, SAMPLE_RATE, AUDIO) for label, est in degraded.items()}


# ---------------------------------------------------------------------------------------------
# Known values


@pytest.mark.parametrize(
    ("name", "perfect", "tolerance"),
    [
        pytest.param("mel_l1", 0.0, 0.0, marks=needs_mel),
        ("mrstft", 0.0, 1e-6),
        ("pesq", 4.644, 0.01),
        ("stoi", 1.0, 1e-6),
        ("f0_rmse_cents", 0.0, 0.0),
        ("f0_rmse_hz", 0.0, 0.0),
        ("vuv_f1", 1.0, 0.0),
    ],
)
def test_identical_signals_score_perfectly(scores, name: str, perfect: float, tolerance: float) -> None:
    assert scores["identical"][name] == pytest.approx(perfect, abs=tolerance)


# Sign +1: larger is worse (distances, errors); -1: larger is better.
DIRECTION = {"mel_l1": +1, "mrstft": +1, "pesq": -1, "stoi": -1}
QUALITY_METRICS = [pytest.param("mel_l1", marks=needs_mel), "mrstft", "pesq", "stoi"]


@pytest.mark.parametrize("name", QUALITY_METRICS)
def test_more_noise_scores_worse(scores, name: str) -> None:
    # White noise at 10 dB already takes wide-band PESQ near its floor (about 1.02) on this clip,
    # so its 10 dB -> 0 dB step is small (0.003), but it is the same for every noise seed.
    badness = {label: DIRECTION[name] * row[name] for label, row in scores.items()}
    assert badness["identical"] < badness["snr_30db"] < badness["snr_10db"] < badness["snr_0db"]


@pytest.mark.parametrize("name", [pytest.param("mel_l1", marks=needs_mel), "mrstft", "stoi"])
def test_a_5ms_delay_scores_worse_on_sample_aligned_metrics(scores, name: str) -> None:
    assert DIRECTION[name] * scores["identical"][name] < DIRECTION[name] * scores["delay_5ms"][name]


def test_pesq_compensates_a_5ms_delay(scores) -> None:
    # PESQ time-aligns the signals before comparing them (P.862), unlike the other metrics.
    assert scores["identical"]["pesq"] - 0.05 < scores["delay_5ms"]["pesq"] <= scores["identical"]["pesq"]


def test_noise_hurts_voicing_decisions(scores) -> None:
    assert scores["identical"]["vuv_f1"] > scores["snr_10db"]["vuv_f1"] > scores["snr_0db"]["vuv_f1"]


def test_a_semitone_up_is_100_cents() -> None:
    reference = speech_like(seconds=1.2, f0_hz=140.0)
    result = f0_metrics(reference, speech_like(seconds=1.2, f0_hz=140.0 * SEMITONE), SAMPLE_RATE)
    # pYIN reports f0 on a 10-cent grid, so a few frames may land one bin off.
    assert result["f0_rmse_cents"] == pytest.approx(100.0, abs=10.0)
    # The contour spans about 126-154 Hz; one semitone there is 7.5-9.2 Hz.
    assert 7.0 < result["f0_rmse_hz"] < 10.0
    assert result["vuv_f1"] > 0.9


def test_gain_of_two_has_known_spectral_distances() -> None:
    # Loud broadband noise keeps every bin above the log floors, so the distances are exact:
    # spectral convergence |S - 2S| / |S| = 1 and |log S - log 2S| = log 2.
    noise = np.random.default_rng(2).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.3
    assert mrstft_distance(noise, 2 * noise) == pytest.approx(1 + math.log(2), rel=1e-3)


@needs_mel
def test_mel_l1_of_a_gain_of_two_is_log_two() -> None:
    # HiFi-GAN's log-mel is of the magnitude, so doubling the signal adds log 2 (a power mel: log 4).
    noise = np.random.default_rng(2).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.3
    assert mel_l1(noise, 2 * noise, AUDIO) == pytest.approx(math.log(2), rel=1e-3)


# ---------------------------------------------------------------------------------------------
# Inputs and edge cases


def test_lengths_are_trimmed_and_tensors_accepted(clean: np.ndarray) -> None:
    longer = np.concatenate([clean, np.ones(7, np.float32)])
    assert mrstft_distance(clean, longer) == pytest.approx(0.0, abs=1e-6)
    assert stoi(torch.from_numpy(longer)[None], clean, SAMPLE_RATE) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="one mono waveform"):
        mrstft_distance(np.stack([clean, clean]), clean)
    with pytest.raises(ValueError, match="NaN"):
        mrstft_distance(clean, np.full_like(clean, np.nan))


def test_f0_metrics_are_nan_without_voiced_frames() -> None:
    silence = np.zeros(SAMPLE_RATE // 2, np.float32)
    result = f0_metrics(silence, silence, SAMPLE_RATE)
    assert all(math.isnan(result[name]) for name in F0_METRICS)


def test_pesq_without_speech_is_nan_with_a_logged_reason(caplog) -> None:
    noise = np.random.default_rng(3).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1
    silence = np.zeros_like(noise)
    with caplog.at_level(logging.WARNING, logger=metrics.__name__):
        assert math.isnan(pesq_wb(silence, noise, SAMPLE_RATE))
        assert math.isnan(pesq_wb(silence, silence, SAMPLE_RATE))
        assert math.isnan(pesq_wb(noise[:2000], noise[:2000], SAMPLE_RATE))
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "No utterances detected" in messages
    assert "digital silence" in messages
    assert "1/4 of a second" in messages


@pytest.mark.parametrize(
    ("module", "names"),
    [("pesq", ("pesq",)), ("pystoi", ("stoi",)), ("librosa", F0_METRICS), ("distgan.losses.mel", ("mel_l1",))],
)
def test_a_missing_package_empties_its_columns_with_a_reason(monkeypatch, clean, module, names) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    metrics._mel_transform.cache_clear()
    reasons = available_metrics()
    assert all(module in reasons[name] for name in names)
    assert reasons["mrstft"] is None
    row = score(clean, clean, SAMPLE_RATE, AUDIO, metrics=(*names, "mrstft"))
    assert all(row[name] is None for name in names)
    assert row["mrstft"] == pytest.approx(0.0, abs=1e-6)
    if module == "pesq":
        with pytest.raises(MetricUnavailable, match="pesq"):
            pesq_wb(clean, clean, SAMPLE_RATE)


def test_score_rejects_unknown_metrics_and_a_mismatched_sample_rate(clean) -> None:
    with pytest.raises(ValueError, match="unknown metrics"):
        score(clean, clean, SAMPLE_RATE, AUDIO, metrics=("mos",))
    with pytest.raises(ValueError, match="audio.sample_rate"):
        score(clean, clean, 16000, AUDIO, metrics=("mel_l1",))
    assert list(score(clean, clean, SAMPLE_RATE, AUDIO, metrics=("stoi", "mrstft"))) == ["stoi", "mrstft"]


def test_summarize_ignores_missing_and_undefined_values() -> None:
    rows = [
        {"pesq": 4.0, "stoi": None, "f0_rmse_cents": math.nan},
        {"pesq": 2.0, "stoi": None, "f0_rmse_cents": 30.0},
        {"pesq": math.nan, "stoi": None, "f0_rmse_cents": 10.0},
    ]
    summary = summarize(rows)
    assert list(summary) == ["pesq", "stoi", "f0_rmse_cents"]
    assert summary["pesq"] == {"mean": 3.0, "std": 1.0, "count": 2}
    assert summary["f0_rmse_cents"] == {"mean": 20.0, "std": 10.0, "count": 2}
    assert summary["stoi"]["count"] == 0 and math.isnan(summary["stoi"]["mean"])


def test_metric_names_are_the_columns_in_order() -> None:
    assert METRICS[:4] == ("mel_l1", "mrstft", "pesq", "stoi")
    assert set(F0_METRICS) <= set(METRICS)
    assert list(available_metrics()) == list(METRICS)


# ---------------------------------------------------------------------------------------------
# A real recording


def test_pesq_and_stoi_on_a_real_clip(ljspeech_mini: Path) -> None:
    recording, sample_rate = soundfile.read(ljspeech_mini / "wavs" / "LJ001-0002.wav", dtype="float32")
    assert sample_rate == SAMPLE_RATE  # also exercises PESQ's resampling to 16 kHz
    results = {
        label: {"pesq": pesq_wb(recording, est, sample_rate), "stoi": stoi(recording, est, sample_rate)}
        for label, est in {
            "identical": recording,
            "snr_10db": add_noise(recording, 10),
            "snr_0db": add_noise(recording, 0),
        }.items()
    }
    assert results["identical"]["pesq"] == pytest.approx(4.644, abs=0.01)
    assert results["identical"]["stoi"] == pytest.approx(1.0, abs=1e-6)
    for name in ("pesq", "stoi"):
        assert results["identical"][name] > results["snr_10db"][name] > results["snr_0db"][name]
