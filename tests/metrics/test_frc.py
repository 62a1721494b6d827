"""Fourier ring correlation: identity, synthetic pairs with a known cut-off, crossing interpolation."""

from __future__ import annotations

import numpy as np
import pytest

from fly64_kedro.metrics.frc import frc_crossing, frc_curve

SIDE = 256


def _radial_frequency(shape: tuple[int, int]) -> np.ndarray:
    return np.hypot(*np.meshgrid(np.fft.fftfreq(shape[0]), np.fft.fftfreq(shape[1]), indexing="ij"))


def _filtered_noise(transfer: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise whose amplitude spectrum is multiplied by ``transfer`` (same shape)."""
    return np.fft.ifft2(np.fft.fft2(rng.standard_normal(transfer.shape)) * transfer).real


def test_identical_images_correlate_at_every_ring(fly_object: np.ndarray) -> None:
    phase = np.angle(fly_object[180:370, 20:364])  # rectangular, 190 × 344
    frequency, curve = frc_curve(phase, phase, tukey_alpha=0.2)
    assert np.allclose(curve, 1.0, atol=1e-12)
    assert frequency[0] == pytest.approx(1 / 190) and frequency[-1] == pytest.approx(0.5)
    assert frc_crossing(frequency, curve, 0.5) == pytest.approx(0.5)


def test_shared_band_below_a_hard_cut_off() -> None:
    """Shared content below k_c, independent noise above: both thresholds cross at k_c."""
    rng = np.random.default_rng(0)
    cutoff = 0.2
    k = _radial_frequency((SIDE, SIDE))
    shared = _filtered_noise((k < cutoff).astype(float), rng)
    high = (k >= cutoff).astype(float)
    image1 = shared + _filtered_noise(high, rng)
    image2 = shared + _filtered_noise(high, rng)
    frequency, curve = frc_curve(image1, image2, tukey_alpha=0.2)
    ring = 1 / SIDE
    assert curve[frequency < cutoff - 4 * ring].min() > 0.9
    assert np.abs(curve[frequency > cutoff + 4 * ring]).max() < 0.3
    for threshold in (0.5, 1 / 7):
        assert frc_crossing(frequency, curve, threshold) == pytest.approx(cutoff, abs=3 * ring)


def test_signal_to_noise_crossings_match_the_closed_form() -> None:
    """Gaussian-spectrum signal S(k) = S0·exp(−k²/k0²) plus white noise N in each image.

    FRC(k) = S/(S + N), so FRC = t at k = k0·sqrt(ln(S0·(1 − t)/(t·N))).
    """
    rng = np.random.default_rng(1)
    k0, noise_std = 0.1, 0.02
    k = _radial_frequency((SIDE, SIDE))
    signal = _filtered_noise(np.exp(-k**2 / (2 * k0**2)), rng)  # power S0·exp(−k²/k0²) with S0 = 1 per pixel
    image1 = signal + noise_std * rng.standard_normal(signal.shape)
    image2 = signal + noise_std * rng.standard_normal(signal.shape)
    frequency, curve = frc_curve(image1, image2, tukey_alpha=0.2)
    for threshold in (0.5, 1 / 7):
        expected = k0 * np.sqrt(np.log((1 - threshold) / (threshold * noise_std**2)))
        assert frc_crossing(frequency, curve, threshold) == pytest.approx(expected, abs=0.005)  # ≈ 1 ring


def test_crossing_interpolates_between_rings() -> None:
    frequency = np.array([0.1, 0.2, 0.3, 0.4])
    curve = np.array([1.0, 0.8, 0.4, 0.1])
    assert frc_crossing(frequency, curve, 0.5) == pytest.approx(0.2 + (0.8 - 0.5) / (0.8 - 0.4) * 0.1)
    assert frc_crossing(frequency, curve, 0.05) == pytest.approx(0.4)  # never below: the highest ring
    assert frc_crossing(frequency, curve, 1.5) == 0.0  # never reaches the threshold: nothing resolved
    assert frc_crossing(frequency, np.array([1.0, np.nan, 0.4, 0.1]), 0.5) == pytest.approx(0.1)
    # a dip at the lowest rings (a slow background) is not the resolution: the search starts at the peak
    dipped = np.array([0.3, 0.9, 0.8, 0.4])
    assert frc_crossing(frequency, dipped, 0.5) == pytest.approx(0.3 + (0.8 - 0.5) / (0.8 - 0.4) * 0.1)


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="one shape"):
        frc_curve(np.zeros((8, 8)), np.zeros((8, 9)), 0.2)


def test_support_keeps_unmeasured_pixels_out_of_the_rings(fly_object: np.ndarray) -> None:
    """Holes filled differently in two otherwise identical images: FRC ≡ 1 over the support, not without it."""
    amplitude = np.abs(fly_object[150:350, 40:340]).astype(np.float64)
    support = np.random.default_rng(4).random(amplitude.shape) > 0.2
    holed = np.where(support, amplitude, 0.0)
    _, masked = frc_curve(holed, amplitude, 0.2, support)
    _, unmasked = frc_curve(holed, amplitude, 0.2)
    assert np.allclose(masked, 1.0, atol=1e-12)
    assert unmasked.min() < 0.9


def test_a_contrast_inverted_image_anti_correlates(fly_object: np.ndarray) -> None:
    """Anti-correlation is not agreement: the real part of the cross-spectrum makes every ring ≈ −1."""
    phase = np.angle(fly_object[150:350, 40:340]).astype(np.float64)
    frequency, curve = frc_curve(-phase + 3.0, phase, tukey_alpha=0.2)
    assert np.allclose(curve, -1.0, atol=1e-12)
    assert frc_crossing(frequency, curve, 0.5) == 0.0  # no ring reaches the threshold: nothing resolved
