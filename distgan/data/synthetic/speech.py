"""Speech-like audio by source-filter synthesis, with numpy and scipy only.

An utterance is a sequence of syllables (an optional fricative or plosive onset, then a vowel)
grouped into words separated by pauses. Two sources are filtered frame by frame in the STFT
domain (frames of about 23 ms, 75 % overlap), so that filters can move without per-sample loops:

- voiced: a band-limited impulse train (all harmonics below 0.45 * sample rate, equal
  amplitude) following a smooth pitch contour (random knots, declination, a little jitter),
  given a glottal-like spectral tilt (harmonic k at about k^-tilt) and five parallel formant
  resonances that glide between vowel targets, plus a little aspiration noise;
- unvoiced: white noise shaped like a fricative (a band around 2-7 kHz) or a plosive burst
  (a short broadband transient after a silent closure).

A faint low-passed background noise covers pauses. A ``Voice`` sets a speaker's f0 range and
scales the formants (shorter vocal tract, higher formants), so speakers differ audibly.
Everything is drawn from ``numpy.random.default_rng`` seeded by the arguments: same arguments,
same samples, on any machine with the same numpy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

# scipy.signal is imported where it is used: importing it takes about a second, and every training
# process imports this module (through the corpus) while only the one that writes the synthetic
# corpus, once, into the cache, calls it.

# (F1, F2, F3) of adult-male vowels, roughly Peterson & Barney; F4, F5 fixed. Hz.
VOWELS = np.array([
    (730, 1090, 2440, 3300, 3750),  # a
    (270, 2290, 3010, 3300, 3750),  # i
    (300, 870, 2240, 3300, 3750),   # u
    (530, 1840, 2480, 3300, 3750),  # e
    (570, 840, 2410, 3300, 3750),   # o
    (660, 1720, 2410, 3300, 3750),  # ae
    (490, 1350, 1690, 3300, 3750),  # er
], dtype=np.float64)
FORMANT_BANDWIDTHS = np.array([90.0, 110.0, 160.0, 220.0, 300.0])
# The source's tilt already makes higher formants weaker; these only shade them.
FORMANT_LEVELS = np.array([1.0, 0.9, 0.7, 0.5, 0.4])
# Noise colours: (centre Hz, width in octaves, RMS relative to a vowel's). 0-3 fricatives (s, sh, f,
# h-like: 10-20 dB below vowels, as in speech), 4-6 bursts (t, k, p).
NOISE_SHAPES = np.array([
    (6500, 0.9, 0.3), (3200, 0.9, 0.3), (5000, 2.5, 0.1), (1800, 1.5, 0.1),
    (4500, 1.5, 0.6), (2000, 1.2, 0.6), (1000, 2.5, 0.5),
])
FRICATIVES, BURSTS = range(0, 4), range(4, 7)


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: median f0 (Hz), pitch movement (semitones), formant scale, tilt."""

    f0_median: float
    f0_semitones: float
    formant_scale: float
    tilt: float
    breathiness: float


def speaker_voice(speaker: int, speakers: int, seed: int) -> Voice:
    """Speakers spread from low (85 Hz, long tract) to high (270 Hz, short tract) voices."""
    rng = np.random.default_rng([seed, speaker, 1])
    position = (speaker + rng.uniform(0.2, 0.8)) / speakers
    return Voice(
        f0_median=float(85.0 * (270.0 / 85.0) ** position),
        f0_semitones=float(rng.uniform(2.0, 5.0)),
        formant_scale=float(0.92 + 0.3 * position + rng.uniform(-0.03, 0.03)),
        tilt=float(rng.uniform(0.7, 1.1)),
        breathiness=float(rng.uniform(0.02, 0.08)),
    )


@dataclass(frozen=True)
class Segment:
    """``kind`` is "pause", "vowel", "fricative" or "burst"; ``shape`` indexes VOWELS or NOISE_SHAPES."""

    kind: str
    start: int
    stop: int
    shape: int = 0
    level: float = 1.0


def plan_segments(rng: np.random.Generator, samples: int, sample_rate: int) -> list[Segment]:
    """Words of 1-3 syllables between pauses, filling ``samples`` (with silence at both ends)."""
    def length(low: float, high: float) -> int:
        return int(rng.uniform(low, high) * sample_rate)

    end = samples - length(0.05, 0.15)
    position = length(0.05, 0.15)
    segments = [Segment("pause", 0, position)]
    while position < end:
        for _ in range(int(rng.integers(1, 4))):
            onset = rng.uniform()
            if onset < 0.35:
                segments.append(Segment("fricative", position, position + length(0.06, 0.14),
                                        int(rng.choice(FRICATIVES)), float(rng.uniform(0.5, 1.0))))
            elif onset < 0.6:
                closure = position + length(0.03, 0.06)
                segments.append(Segment("pause", position, closure))
                segments.append(Segment("burst", closure, closure + length(0.008, 0.02),
                                        int(rng.choice(BURSTS)), float(rng.uniform(0.5, 1.0))))
            position = segments[-1].stop
            segments.append(Segment("vowel", position, position + length(0.08, 0.22),
                                    int(rng.integers(len(VOWELS))), float(rng.uniform(0.6, 1.0))))
            position = segments[-1].stop
        if rng.uniform() < 0.6:
            segments.append(Segment("pause", position, position + length(0.06, 0.25)))
            position = segments[-1].stop
    kept = [s for s in segments if s.start < end]
    kept[-1] = dataclasses.replace(kept[-1], stop=min(kept[-1].stop, end))
    return kept


def synthesize_utterance(voice: Voice, seconds: float, sample_rate: int, rng: np.random.Generator
                         ) -> np.ndarray:
    """One utterance: float32 ``[round(seconds * sample_rate)]`` with a peak of 0.5."""
    samples = int(round(seconds * sample_rate))
    segments = plan_segments(rng, samples, sample_rate)
    nperseg = int(2 ** round(np.log2(0.025 * sample_rate)))
    hop = nperseg // 4
    frame_times = np.arange(samples // hop + 2) * hop
    freqs = np.fft.rfftfreq(nperseg, 1.0 / sample_rate)

    voiced_gain, noise_gain = np.zeros(samples), np.zeros(samples)
    noise_shape = np.zeros(len(frame_times), dtype=np.int64)
    for seg in segments:
        if seg.kind == "vowel":
            voiced_gain[seg.start:seg.stop] = seg.level
        elif seg.kind != "pause":
            decay = np.exp(-np.arange(seg.stop - seg.start) / (0.006 * sample_rate)) if seg.kind == "burst" else 1.0
            noise_gain[seg.start:seg.stop] = seg.level * NOISE_SHAPES[seg.shape, 2] * decay
            noise_shape[(frame_times >= seg.start - hop) & (frame_times < seg.stop + hop)] = seg.shape
    voiced_gain = _smooth(voiced_gain, int(0.015 * sample_rate))
    noise_gain = _smooth(noise_gain, int(0.003 * sample_rate))

    f0 = _pitch_contour(voice, samples, sample_rate, rng)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    excitation = _impulse_train(phase, np.maximum(np.floor(0.45 * sample_rate / f0), 1.0))
    excitation = excitation + voice.breathiness * rng.standard_normal(samples)
    formants = _formant_tracks(segments, frame_times, voice.formant_scale)
    envelope = _formant_envelope(freqs, formants) * _tilt(freqs, voice.f0_median, voice.tilt)
    voiced = _filter_frames(excitation * voiced_gain, envelope, nperseg, hop)
    voiced /= max(np.sqrt(np.mean(voiced[voiced_gain > 0.5] ** 2)), 1e-9)  # vowels at RMS ~ level

    shapes = np.stack([_noise_band(freqs, c, w, sample_rate) for c, w, _ in NOISE_SHAPES])
    shapes /= np.sqrt(np.mean(shapes**2, axis=1, keepdims=True))  # unit-variance noise stays unit
    unvoiced = _filter_frames(rng.standard_normal(samples), shapes[noise_shape], nperseg, hop) * noise_gain

    audio = voiced + unvoiced
    audio = audio / max(np.abs(audio).max(), 1e-9)
    from scipy import signal

    background = signal.lfilter([0.1], [1.0, -0.9], rng.standard_normal(samples))
    audio = audio + 10 ** (-50 / 20) * background / background.std()
    return (0.5 * audio / np.abs(audio).max()).astype(np.float32)


def _smooth(track: np.ndarray, width: int) -> np.ndarray:
    """Soften on/off steps with a Hann window of ``width`` samples (no clicks at boundaries)."""
    from scipy import signal

    window = np.hanning(max(width, 3))
    return signal.oaconvolve(track, window / window.sum(), mode="same")


def _pitch_contour(voice: Voice, samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """f0 in Hz per sample: random knots every ~150 ms, falling by ~2 semitones over the utterance."""
    knots = max(2, int(samples / sample_rate / 0.15) + 1)
    semitones = rng.uniform(-1.0, 1.0, knots) * voice.f0_semitones / 2
    semitones += np.linspace(1.0, -1.0, knots)  # declination
    contour = np.interp(np.arange(samples), np.linspace(0, samples - 1, knots), semitones)
    contour = _smooth(contour, int(0.08 * sample_rate))
    jitter = _smooth(rng.standard_normal(samples), int(0.01 * sample_rate)) * 0.3
    return voice.f0_median * 2.0 ** ((contour + jitter) / 12.0)


def _impulse_train(phase: np.ndarray, harmonics: np.ndarray) -> np.ndarray:
    """sum_{k=1..K} cos(k * phase) in closed form (Dirichlet kernel), K per sample: no aliasing."""
    half = np.sin(phase / 2)
    safe = np.where(np.abs(half) < 1e-9, 1e-9, half)
    train = np.sin((harmonics + 0.5) * phase) / (2 * safe) - 0.5
    train = np.where(np.abs(half) < 1e-9, harmonics, train)
    return train / np.sqrt(harmonics)


def _formant_tracks(segments: list[Segment], frame_times: np.ndarray, scale: float) -> np.ndarray:
    """``[frames, 5]`` formant frequencies gliding between the vowels' targets (at their centres)."""
    vowels = [s for s in segments if s.kind == "vowel"] or [Segment("vowel", 0, 1)]
    centres = np.array([(s.start + s.stop) / 2 for s in vowels])
    targets = VOWELS[[s.shape for s in vowels]] * scale
    return np.stack([np.interp(frame_times, centres, targets[:, i]) for i in range(targets.shape[1])], axis=1)


def _formant_envelope(freqs: np.ndarray, formants: np.ndarray) -> np.ndarray:
    """``[frames, bins]``: a sum of resonance peaks (parallel formant synthesis) plus a small floor.

    Each peak is a squared Lorentzian, -3 dB at half its bandwidth from the centre, so that the
    valleys between formants are 20-30 dB deep as in speech.
    """
    offset = (freqs[None, None, :] - formants[:, :, None]) / (FORMANT_BANDWIDTHS[None, :, None] / 2)
    peaks = FORMANT_LEVELS[None, :, None] / (1.0 + offset**2)
    return peaks.sum(axis=1) + 0.003


def _tilt(freqs: np.ndarray, f0: float, tilt: float) -> np.ndarray:
    """Glottal source roll-off: flat up to f0, then falling as (f / f0) ** -tilt."""
    return np.maximum(freqs / f0, 1.0) ** -tilt


def _noise_band(freqs: np.ndarray, centre: float, octaves: float, sample_rate: int) -> np.ndarray:
    """A Gaussian band in log-frequency; the centre is kept below Nyquist for low sample rates."""
    centre = min(centre, 0.35 * sample_rate)
    distance = np.log2(np.maximum(freqs, 20.0) / centre) / (octaves / 2)
    return np.exp(-0.5 * distance**2)


def _filter_frames(audio: np.ndarray, gains: np.ndarray, nperseg: int, hop: int) -> np.ndarray:
    """Multiply each STFT frame of ``audio`` by a row of ``gains`` ``[frames, bins]``, resynthesize."""
    from scipy import signal

    _, _, spectrum = signal.stft(audio, nperseg=nperseg, noverlap=nperseg - hop)
    frames = spectrum.shape[1]
    rows = np.minimum(np.arange(frames), len(gains) - 1)
    _, filtered = signal.istft(spectrum * gains[rows].T, nperseg=nperseg, noverlap=nperseg - hop)
    return filtered[: len(audio)]
