"""Forward model and photon statistics: the numbers against direct references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fly64_kedro.physics.forward import (
    INVERSION_MAX_MEAN,
    extract_patches,
    far_field_intensity,
    intensity_scale_for_dose,
    noiseless_intensity,
    poisson_counts,
)


def random_complex(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def test_patches_are_centred_on_the_positions() -> None:
    rng = np.random.default_rng(1)
    obj = random_complex(rng, (40, 50))
    y, x = np.array([4.0, 20.0, 36.0]), np.array([4.0, 31.0, 46.0])
    patches = extract_patches(obj, y, x, 8)
    assert patches.shape == (3, 8, 8)
    for patch, yi, xi in zip(patches, y.astype(int), x.astype(int)):
        np.testing.assert_array_equal(patch, obj[yi - 4:yi + 4, xi - 4:xi + 4])
        assert patch[4, 4] == obj[yi, xi]  # the position is the patch's centre pixel (N/2, N/2)


@pytest.mark.parametrize(("y", "x"), [(3.0, 10.0), (10.0, 3.0), (37.0, 10.0), (10.0, 47.0)])
def test_a_patch_leaving_the_object_is_refused(y: float, x: float) -> None:
    obj = np.zeros((40, 50), dtype=np.complex64)
    with pytest.raises(ValueError, match="inside the object"):
        extract_patches(obj, np.array([20.0, y]), np.array([20.0, x]), 8)


def test_far_field_is_the_centred_squared_fft_and_parseval_holds() -> None:
    rng = np.random.default_rng(2)
    waves = random_complex(rng, (5, 16, 16))
    intensity = far_field_intensity(waves)
    reference = np.abs(np.fft.fftshift(np.fft.fft2(waves.astype(np.complex128)), axes=(-2, -1))) ** 2
    assert intensity.dtype == np.float32
    np.testing.assert_allclose(intensity, reference, rtol=2e-5, atol=1e-4 * reference.max())
    # unnormalised FFT: Σ_k |F|² = N² Σ_r |ψ|²
    np.testing.assert_allclose(intensity.sum(axis=(-2, -1), dtype=np.float64),
                               16 * 16 * (np.abs(waves.astype(np.complex128)) ** 2).sum(axis=(-2, -1)), rtol=1e-5)
    # DC (the sum of the wave) sits at the centre pixel (N/2, N/2)
    np.testing.assert_allclose(intensity[:, 8, 8], np.abs(waves.astype(np.complex128).sum(axis=(-2, -1))) ** 2,
                               rtol=1e-4)


def test_noiseless_intensity_is_the_forward_model_at_every_position() -> None:
    rng = np.random.default_rng(3)
    obj = random_complex(rng, (64, 64))
    probe = random_complex(rng, (16, 16))
    y = rng.integers(8, 57, size=300).astype(np.float64)
    x = rng.integers(8, 57, size=300).astype(np.float64)
    intensity = noiseless_intensity(obj, probe, y, x, workers=2)
    assert intensity.shape == (300, 16, 16) and intensity.dtype == np.float32
    np.testing.assert_array_equal(intensity, far_field_intensity(extract_patches(obj, y, x, 16) * probe))
    exit_wave = probe * obj[int(y[7]) - 8:int(y[7]) + 8, int(x[7]) - 8:int(x[7]) + 8]
    reference = np.abs(np.fft.fftshift(np.fft.fft2(exit_wave.astype(np.complex128)))) ** 2
    np.testing.assert_allclose(intensity[7], reference, rtol=1e-4, atol=1e-5 * reference.max())
    with pytest.raises(ValueError, match="inside the object"):
        noiseless_intensity(obj, probe, np.append(y, 60.0), np.append(x, 30.0))


def test_intensity_scale_makes_the_mean_total_equal_the_dose() -> None:
    rng = np.random.default_rng(4)
    intensity = rng.random((20, 8, 8)).astype(np.float32) * rng.random((20, 1, 1)).astype(np.float32)
    for dose in (1e3, 1e4, 1e5):
        scale = intensity_scale_for_dose(intensity, dose)
        assert np.isclose((scale * intensity.astype(np.float64)).sum(axis=(-2, -1)).mean(), dose, rtol=1e-6)
    with pytest.raises(ValueError, match="positive mean total"):
        intensity_scale_for_dose(np.zeros((2, 4, 4), np.float32), 1e3)


def test_counts_are_non_negative_integers_in_float32() -> None:
    expected = np.random.default_rng(5).exponential(3.0, size=(50, 16, 16)).astype(np.float32)
    counts = poisson_counts(expected, np.random.default_rng(0))
    assert counts.dtype == np.float32 and counts.shape == expected.shape
    assert counts.min() >= 0
    np.testing.assert_array_equal(counts, np.rint(counts))


@pytest.mark.parametrize("mean", [0.02, 0.4, np.nextafter(INVERSION_MAX_MEAN, 0), INVERSION_MAX_MEAN, 4.0, 60.0])
def test_counts_follow_the_poisson_distribution(mean: float) -> None:
    """Chi-square goodness of fit against the Poisson pmf, on both sides of the sampler switch."""
    counts = poisson_counts(np.full(200_000, mean), np.random.default_rng(6)).astype(np.int64)
    support = np.arange(counts.max() + 1)
    expected = stats.poisson.pmf(support, mean) * counts.size
    observed = np.bincount(counts, minlength=support.size)
    keep = expected > 5  # pool the sparse tail into one cell
    observed = np.append(observed[keep], observed[~keep].sum())
    expected = np.append(expected[keep], counts.size - expected[keep].sum())
    statistic = ((observed - expected) ** 2 / np.maximum(expected, 1e-12)).sum()
    assert stats.chi2.sf(statistic, keep.sum()) > 1e-3


def test_variance_equals_mean_per_pixel_over_repeated_draws() -> None:
    rng = np.random.default_rng(7)
    expected = np.geomspace(0.01, 300.0, 64).reshape(8, 8)
    draws = np.stack([poisson_counts(expected, rng) for _ in range(2000)]).astype(np.float64)
    n = draws.shape[0]
    mean, variance = draws.mean(axis=0), draws.var(axis=0, ddof=1)
    assert np.all(np.abs(mean - expected) < 5 * np.sqrt(expected / n))
    # Var(sample variance) ≈ (2λ² + λ)/n for a Poisson; allow 5 standard errors
    assert np.all(np.abs(variance - expected) < 5 * np.sqrt((2 * expected**2 + expected) / n))


def test_same_stream_gives_identical_counts_whatever_the_thread_count() -> None:
    expected = np.random.default_rng(8).exponential(2.0, size=(100, 64, 64))  # several batches
    one = poisson_counts(expected, np.random.default_rng(9), workers=1)
    two = poisson_counts(expected, np.random.default_rng(9), workers=2)
    np.testing.assert_array_equal(one, two)
    assert not np.array_equal(one, poisson_counts(expected, np.random.default_rng(10)))


@pytest.mark.parametrize("bad", [-0.5, np.nan, np.inf])
def test_invalid_expected_counts_are_refused(bad: float) -> None:
    expected = np.ones((4, 4))
    expected[1, 2] = bad
    with pytest.raises(ValueError, match=f"expected counts must be finite and ≥ 0; got 1 values that are not, e.g. {bad}"):
        poisson_counts(expected, np.random.default_rng(0))
