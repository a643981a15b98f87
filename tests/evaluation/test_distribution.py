"""The unconditional-audio metrics on Gaussians and clip sets whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from distgan.evaluation.distribution import (
    clip_features,
    frechet_distance,
    frechet_mel,
    gaussian_fit,
    mean_pairwise_distance,
    pairwise_distance_ratio,
)


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form() -> None:
    # Diagonal covariances commute: the distance is |m_a - m_b|^2 + sum (s_a - s_b)^2.
    mean_a, mean_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    std_a, std_b = np.array([1.0, 2.0, 0.5]), np.array([3.0, 2.0, 0.0])
    expected = 1 + 0 + 4 + (2**2 + 0 + 0.5**2)
    assert frechet_distance(mean_a, np.diag(std_a**2), mean_b, np.diag(std_b**2)) == pytest.approx(expected)


def test_frechet_distance_is_zero_for_one_gaussian_and_symmetric_for_correlated_ones() -> None:
    rng = np.random.default_rng(0)
    root = rng.normal(size=(4, 4))
    cov_a, cov_b = root @ root.T, np.diag([1.0, 2.0, 3.0, 0.0])  # one singular
    mean = rng.normal(size=4)
    assert frechet_distance(mean, cov_a, mean, cov_a) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(mean, cov_a, mean, cov_b) == pytest.approx(frechet_distance(mean, cov_b, mean, cov_a))


def test_frechet_mel_of_samples_approaches_the_distance_of_their_gaussians() -> None:
    rng = np.random.default_rng(1)
    real = rng.normal(loc=-4.0, scale=2.0, size=(20000, 3))
    fake = rng.normal(loc=-3.0, scale=1.0, size=(20000, 3))
    assert frechet_mel(real, fake) == pytest.approx(3 * 1.0 + 3 * 1.0, rel=0.03)
    mean, cov = gaussian_fit(real)
    assert mean == pytest.approx([-4.0] * 3, abs=0.05) and np.diag(cov) == pytest.approx([4.0] * 3, rel=0.05)
    with pytest.raises(ValueError, match="N >= 2"):
        gaussian_fit(real[:1])


def test_pairwise_distance_ratio_sees_collapse() -> None:
    rng = np.random.default_rng(2)
    real = rng.normal(size=(16, 10))
    assert mean_pairwise_distance(np.array([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)
    assert pairwise_distance_ratio(real, np.repeat(real[:1], 16, axis=0)) == 0.0  # every clip alike
    assert pairwise_distance_ratio(real, rng.normal(size=(16, 10))) == pytest.approx(1.0, abs=0.2)
    assert pairwise_distance_ratio(real, 0.1 * rng.normal(size=(16, 10))) == pytest.approx(0.1, abs=0.03)


def test_clip_features_are_each_band_s_mean_and_spread() -> None:
    log_mel = np.array([[1.0, 3.0], [2.0, 2.0]])
    assert clip_features(log_mel) == pytest.approx([2.0, 2.0, 1.0, 0.0])
