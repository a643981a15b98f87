"""Objective speech-quality metrics for ``distgan evaluate`` and the trainer's periodic validation.

Each metric compares a reference waveform with a vocoder's reconstruction of it. Inputs are 1-D
numpy arrays or torch tensors at the model's sample rate; a vocoder's output can be a few samples
longer or shorter than its reference, so both are cut to the shorter length first.

PESQ, STOI and pitch come from the packages made for them (``pesq``, ``pystoi``, librosa's pYIN).
They are imported only when used, so a platform without one of them still scores the rest, and
``available_metrics`` says why a column is empty.

Cost on one 3 s clip at 22.05 kHz (CPU): the spectral metrics take milliseconds, PESQ and STOI a
fraction of a second, and pYIN about a quarter of a second (plus a few seconds of JIT compilation
the first time in a process); leave the f0 metrics out of ``metrics=`` where that matters.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType

import numpy as np
import torch
import torchaudio.functional

from distgan.config import AudioConfig

logger = logging.getLogger(__name__)

Waveform = np.ndarray | torch.Tensor

# Column names, in the order ``distgan evaluate`` prints them. Lower is better for mel_l1, mrstft
# and the f0 errors; higher is better for pesq, stoi and vuv_f1.
METRICS: tuple[str, ...] = ("mel_l1", "mrstft", "pesq", "stoi", "f0_rmse_cents", "f0_rmse_hz", "vuv_f1")
F0_METRICS: tuple[str, ...] = ("f0_rmse_cents", "f0_rmse_hz", "vuv_f1")

# The module each metric needs; checked by importing it, so the answer is true for this platform.
_REQUIRED_MODULE: dict[str, str] = {
    "mel_l1": "distgan.losses.mel",
    "mrstft": "torch",
    "pesq": "pesq",
    "stoi": "pystoi",
    "f0_rmse_cents": "librosa",
    "f0_rmse_hz": "librosa",
    "vuv_f1": "librosa",
}

# Parallel WaveGAN's multi-resolution STFT loss uses three resolutions; these are
# (n_fft, hop_length, win_length) at the scale of HiFi-GAN's 22.05 kHz, 1024-point mel.
MRSTFT_RESOLUTIONS: tuple[tuple[int, int, int], ...] = ((512, 128, 512), (1024, 256, 1024), (2048, 512, 2048))
# The widest STFT reflect-pads by half its size, so shorter clips cannot be scored.
MIN_SCORED_SAMPLES = max(n_fft for n_fft, _, _ in MRSTFT_RESOLUTIONS)

# Wide-band PESQ (ITU-T P.862.2) is defined at 16 kHz only.
PESQ_SAMPLE_RATE = 16000

# A pitch range that covers speaking voices (low male to high child) without wasting pYIN's search.
F0_MIN_HZ = 50.0
F0_MAX_HZ = 600.0


class MetricUnavailable(RuntimeError):
    """A metric's package cannot be imported here; the message says which one and why."""


def _require(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MetricUnavailable(f"{module} not installed ({err})") from err


def available_metrics(names: Iterable[str] = METRICS) -> dict[str, str | None]:
    """Metric name -> None if it can be computed here, else the reason, for the evaluate table.

    Only ``names`` are checked (each check imports its package: pystoi and librosa take about a
    second, which a training run asking for ``mrstft`` alone should not pay at every start)."""
    reasons: dict[str, str | None] = {}
    for name in names:
        try:
            _require(_REQUIRED_MODULE[name])
            reasons[name] = None
        except MetricUnavailable as err:
            reasons[name] = str(err)
    return reasons


def _as_array(waveform: Waveform, name: str) -> np.ndarray:
    # squeeze() lets the trainer pass a generator output slice shaped [1, T] as it is.
    if isinstance(waveform, torch.Tensor):
        waveform = waveform.detach().to("cpu", torch.float64).numpy()
    array = np.asarray(waveform, dtype=np.float64).squeeze()
    if array.ndim != 1:
        raise ValueError(f"{name} must be one mono waveform, got shape {np.shape(waveform)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite samples")
    return array


def _as_pair(ref: Waveform, est: Waveform) -> tuple[np.ndarray, np.ndarray]:
    """Both waveforms as float64 arrays cut to the shorter one: vocoders pad to whole hops."""
    ref_array, est_array = _as_array(ref, "ref"), _as_array(est, "est")
    length = min(len(ref_array), len(est_array))
    return ref_array[:length], est_array[:length]


# ---------------------------------------------------------------------------------------------
# Spectral distances (torch, milliseconds per clip)


@functools.lru_cache(maxsize=4)
def _mel_transform(audio_fields: tuple) -> torch.nn.Module:
    """One filterbank per configuration: validation scores clips with the same settings every time."""
    mel_module = _require("distgan.losses.mel")
    return mel_module.MelSpectrogram(AudioConfig(*audio_fields)).eval()


def mel_l1(ref: Waveform, est: Waveform, audio: AudioConfig) -> float:
    """HiFi-GAN's validation "mel error": mean |log-mel(ref) - log-mel(est)|.

    Like HiFi-GAN, it uses the loss band (``audio.fmax_loss``, full band by default) rather than the
    model-input band, so it is the number the generator's mel loss optimises, without the weight.
    """
    ref_array, est_array = _as_pair(ref, est)
    loss_band = dataclasses.replace(audio, fmax=audio.fmax_loss)
    transform = _mel_transform(dataclasses.astuple(loss_band))
    with torch.no_grad():
        ref_mel, est_mel = transform(torch.from_numpy(np.stack([ref_array, est_array])).float())
    return float((ref_mel - est_mel).abs().mean())


def mrstft_distance(
    ref: Waveform,
    est: Waveform,
    resolutions: Sequence[tuple[int, int, int]] = MRSTFT_RESOLUTIONS,
) -> float:
    """Parallel WaveGAN's multi-resolution STFT distance.

    Mean over (n_fft, hop_length, win_length) resolutions of spectral convergence
    (||S_ref - S_est||_F / ||S_ref||_F) plus mean |log S_ref - log S_est|, with S the STFT
    magnitude. Several resolutions keep one window size's time/frequency trade-off from hiding
    errors. The clip must be longer than half the largest n_fft (reflect padding).
    """
    ref_array, est_array = _as_pair(ref, est)
    signals = torch.from_numpy(np.stack([ref_array, est_array])).float()
    distances = []
    for n_fft, hop_length, win_length in resolutions:
        spectrum = torch.stft(
            signals, n_fft, hop_length, win_length, window=torch.hann_window(win_length), return_complex=True
        )
        # Parallel WaveGAN's floor on the power keeps log() finite in digital silence.
        ref_mag, est_mag = (spectrum.real**2 + spectrum.imag**2).clamp(min=1e-7).sqrt()
        convergence = torch.linalg.norm(ref_mag - est_mag) / torch.linalg.norm(ref_mag)
        log_distance = (ref_mag.log() - est_mag.log()).abs().mean()
        distances.append(float(convergence + log_distance))
    return sum(distances) / len(distances)


# ---------------------------------------------------------------------------------------------
# Perceptual and pitch metrics (from their reference packages)


def _pesq_reason(err: Exception) -> str:
    # The pesq package passes the C library's message through as bytes.
    message = err.args[0] if err.args else type(err).__name__
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)


def pesq_wb(ref: Waveform, est: Waveform, sample_rate: int) -> float:
    """Wide-band PESQ (P.862.2, MOS-LQO from about 1.04 to 4.64), resampled to 16 kHz if needed.

    PESQ is undefined for clips without speech activity or shorter than 0.25 s; those give NaN and
    a logged warning rather than an exception, so one odd validation clip cannot stop a run.
    Raises ``MetricUnavailable`` if the ``pesq`` package is missing.
    """
    pesq = _require("pesq")
    ref_array, est_array = _as_pair(ref, est)
    if sample_rate != PESQ_SAMPLE_RATE:
        resampled = torchaudio.functional.resample(
            torch.from_numpy(np.stack([ref_array, est_array])), sample_rate, PESQ_SAMPLE_RATE
        )
        ref_array, est_array = resampled.numpy()
    if not (np.any(ref_array) or np.any(est_array)):
        # pesq divides by the joint peak, which would be 0/0 here.
        logger.warning("PESQ undefined: both signals are digital silence; scoring NaN")
        return math.nan
    try:
        return float(pesq.pesq(PESQ_SAMPLE_RATE, ref_array, est_array, "wb"))
    except (pesq.NoUtterancesError, pesq.BufferTooShortError) as err:
        logger.warning("PESQ undefined for this clip (%s); scoring NaN", _pesq_reason(err))
        return math.nan


def stoi(ref: Waveform, est: Waveform, sample_rate: int, extended: bool = False) -> float:
    """Short-time objective intelligibility (0..1) from ``pystoi``, which resamples to 10 kHz itself.

    Raises ``MetricUnavailable`` if ``pystoi`` is missing.
    """
    pystoi = _require("pystoi")
    ref_array, est_array = _as_pair(ref, est)
    return float(pystoi.stoi(ref_array, est_array, sample_rate, extended=extended))


def _pyin_frame_length(sample_rate: int, fmin: float) -> int:
    """Smallest power of two holding two periods of fmin, as YIN needs; larger frames only cost time."""
    return 1 << math.ceil(math.log2(2 * sample_rate / fmin + 2))


def f0_metrics(
    ref: Waveform,
    est: Waveform,
    sample_rate: int,
    fmin: float = F0_MIN_HZ,
    fmax: float = F0_MAX_HZ,
) -> dict[str, float]:
    """Pitch accuracy of est against ref, with both tracked by librosa's pYIN.

    Returns ``f0_rmse_cents`` (RMS of 1200 log2(f0_est / f0_ref)) and ``f0_rmse_hz`` over frames
    voiced in both, the usual vocoder-paper definition, NaN when no frame is; and ``vuv_f1``, the F1
    score of est's voiced decisions against ref's, NaN when neither has a voiced frame. Frames hop
    a quarter of pYIN's frame (11.6 ms at 22.05 kHz). Raises ``MetricUnavailable`` without librosa.
    """
    librosa = _require("librosa")
    ref_array, est_array = _as_pair(ref, est)
    # One call on a [2, T] array tracks both signals with the same frames.
    f0, voiced, _ = librosa.pyin(
        np.stack([ref_array, est_array]),
        fmin=fmin,
        fmax=fmax,
        sr=sample_rate,
        frame_length=_pyin_frame_length(sample_rate, fmin),
    )
    (ref_f0, est_f0), (ref_voiced, est_voiced) = f0, voiced
    both = ref_voiced & est_voiced
    true_pos = int(both.sum())
    false_pos = int((est_voiced & ~ref_voiced).sum())
    false_neg = int((ref_voiced & ~est_voiced).sum())
    decided = 2 * true_pos + false_pos + false_neg
    results = {
        "f0_rmse_cents": math.nan,
        "f0_rmse_hz": math.nan,
        "vuv_f1": 2 * true_pos / decided if decided else math.nan,
    }
    if true_pos:
        cents = 1200.0 * np.log2(est_f0[both] / ref_f0[both])
        results["f0_rmse_cents"] = float(np.sqrt(np.mean(cents**2)))
        results["f0_rmse_hz"] = float(np.sqrt(np.mean((est_f0[both] - ref_f0[both]) ** 2)))
    return results


# ---------------------------------------------------------------------------------------------
# Scoring clips and summarising a set


def score(
    ref: Waveform,
    est: Waveform,
    sample_rate: int,
    audio: AudioConfig,
    metrics: Sequence[str] = METRICS,
) -> dict[str, float | None]:
    """The requested metrics for one clip, in the order asked; None where a metric's package is
    missing (``available_metrics`` has the reason), NaN where a metric is undefined for the clip.
    """
    unknown = [name for name in metrics if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {list(METRICS)}")
    if "mel_l1" in metrics and sample_rate != audio.sample_rate:
        raise ValueError(f"mel_l1 needs audio at audio.sample_rate={audio.sample_rate}, got {sample_rate}")
    ref_array, est_array = _as_pair(ref, est)
    pitch: dict[str, float] = {}

    def f0_metric(name: str) -> float:
        # The three f0 columns share one pYIN run, the slowest step here.
        if not pitch:
            pitch.update(f0_metrics(ref_array, est_array, sample_rate))
        return pitch[name]

    compute: dict[str, Callable[[], float]] = {
        "mel_l1": lambda: mel_l1(ref_array, est_array, audio),
        "mrstft": lambda: mrstft_distance(ref_array, est_array),
        "pesq": lambda: pesq_wb(ref_array, est_array, sample_rate),
        "stoi": lambda: stoi(ref_array, est_array, sample_rate),
    }
    for name in F0_METRICS:
        compute[name] = functools.partial(f0_metric, name)
    results: dict[str, float | None] = {}
    for name in metrics:
        try:
            results[name] = compute[name]()
        except MetricUnavailable:
            results[name] = None
    return results


def summarize(rows: Sequence[dict[str, float | None]]) -> dict[str, dict[str, float]]:
    """Per metric: mean, population std and count of the clips where it is defined.

    None (metric unavailable) and NaN (undefined for that clip) are left out, so ``count`` says how
    many clips a mean rests on; with no such clip, mean and std are NaN.
    """
    names = list(dict.fromkeys(name for row in rows for name in row))
    summary: dict[str, dict[str, float]] = {}
    for name in names:
        values = np.array([row[name] for row in rows if row.get(name) is not None], dtype=np.float64)
        values = values[np.isfinite(values)]
        summary[name] = {
            "mean": float(values.mean()) if values.size else math.nan,
            "std": float(values.std()) if values.size else math.nan,
            "count": int(values.size),
        }
    return summary
