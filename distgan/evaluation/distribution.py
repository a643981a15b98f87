"""How close a set of generated clips is to real audio as a whole, with no pairing between them
(for unconditional generation, where no generated clip has a real counterpart).

The usual metric, Fréchet Audio Distance, fits Gaussians to a pretrained network's embeddings
(VGGish); that network cannot be fetched here, so ``frechet_mel`` fits them to log-mel frames
instead. It is a proxy, not FAD: it sees each frame's spectral envelope and loudness, not the
longer structure an embedding network summarises, and its values are not comparable with
published FAD numbers. ``pairwise_distance_ratio`` watches for mode collapse: the mean distance
between generated clips over the mean distance between real ones (near 0: every clip alike).

Inputs are NumPy arrays of frames or clip features, one row each; everything is float64.
"""

from __future__ import annotations

import numpy as np


def gaussian_fit(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and covariance ``[D, D]`` (unbiased) of ``rows`` ``[N, D]``, N >= 2."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[0] < 2:
        raise ValueError(f"a Gaussian fit needs rows [N >= 2, D], got shape {rows.shape}")
    return rows.mean(axis=0), np.cov(rows, rowvar=False).reshape(rows.shape[1], rows.shape[1])


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Fréchet (2-Wasserstein squared) distance between two Gaussians:
    ``|m_a - m_b|^2 + tr(C_a + C_b - 2 (C_a^1/2 C_b C_a^1/2)^1/2)``.

    The trace of the square root is taken from the eigenvalues of the symmetric
    ``C_a^1/2 C_b C_a^1/2``, which stays real and exact for the singular covariances that few frames
    in many mel bands give (where a general matrix square root turns complex)."""
    root_a = _psd_sqrt(np.asarray(cov_a, dtype=np.float64))
    middle = root_a @ np.asarray(cov_b, dtype=np.float64) @ root_a
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = np.asarray(mean_a, dtype=np.float64) - np.asarray(mean_b, dtype=np.float64)
    return float(max(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * cross, 0.0))


def frechet_mel(real_frames: np.ndarray, fake_frames: np.ndarray) -> float:
    """``frechet_distance`` between Gaussian fits of real and generated log-mel frames ``[N, n_mels]``."""
    return frechet_distance(*gaussian_fit(real_frames), *gaussian_fit(fake_frames))


def mean_pairwise_distance(features: np.ndarray) -> float:
    """Mean Euclidean distance over all pairs of rows of ``features`` ``[N >= 2, D]``."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"pairwise distances need rows [N >= 2, D], got shape {features.shape}")
    diffs = features[:, None, :] - features[None, :, :]
    distances = np.sqrt((diffs ** 2).sum(axis=-1))
    n = features.shape[0]
    return float(distances.sum() / (n * (n - 1)))


def pairwise_distance_ratio(real_features: np.ndarray, fake_features: np.ndarray) -> float:
    """Mean pairwise distance of generated clips' features over that of real clips' (1: as varied
    as real audio; towards 0: mode collapse). Inf when the real clips are all identical."""
    real = mean_pairwise_distance(real_features)
    return mean_pairwise_distance(fake_features) / real if real > 0 else float("inf")


def clip_features(log_mel: np.ndarray) -> np.ndarray:
    """One clip's summary ``[2 * n_mels]`` from its log-mel ``[n_mels, frames]``: the per-band mean
    and standard deviation over time (what ``pairwise_distance_ratio`` compares)."""
    log_mel = np.asarray(log_mel, dtype=np.float64)
    return np.concatenate([log_mel.mean(axis=1), log_mel.std(axis=1)])
