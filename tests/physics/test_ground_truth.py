"""Embedded ground truth: the Siemens-star object and the defocused zone-plate probe."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage

from fly64_kedro.physics.ground_truth import (
    measure_probe_diameter,
    siemens_star_pattern,
    synthesize_object,
    synthesize_probe,
)

OBJECT_ARGS = {"size": 192, "n_spokes": 18, "radius_fraction": 0.95, "amplitude_range": (0.55, 1.0),
               "phase_range_rad": 1.0, "texture_amplitude": 0.04, "texture_phase_rad": 0.15,
               "texture_correlation_px": 1.5}


def band_powers(image: np.ndarray, n_bands: int = 8) -> np.ndarray:
    """Mean spectral power in equal-width radial frequency bands from 0 to Nyquist."""
    power = np.abs(np.fft.fft2(image - image.mean())) ** 2
    freq = np.fft.fftfreq(image.shape[0])
    k = np.hypot(*np.meshgrid(freq, freq, indexing="ij"))
    edges = np.linspace(0, 0.5, n_bands + 1)
    return np.array([power[(k >= lo) & (k < hi)].mean() for lo, hi in itertools.pairwise(edges)])


def radial_profile(image: np.ndarray) -> np.ndarray:
    n = image.shape[0]
    yy, xx = np.indices(image.shape)
    radius = np.rint(np.hypot(yy - n // 2, xx - n // 2)).astype(int).ravel()
    return np.bincount(radius, image.ravel()) / np.bincount(radius)


def test_star_has_its_spokes_and_stays_in_unit_range() -> None:
    n_spokes, size = 18, 192
    star = siemens_star_pattern(size, n_spokes, 0.95)
    assert star.shape == (size, size) and star.min() >= 0 and star.max() <= 1
    outer = 0.95 * size / 2
    angles = np.linspace(0, 2 * np.pi, 4000, endpoint=False)
    for radius in (0.3 * outer, 0.7 * outer, 0.9 * outer):  # away from the two rings
        samples = ndimage.map_coordinates(star, [size / 2 - 0.5 + radius * np.sin(angles),
                                                 size / 2 - 0.5 + radius * np.cos(angles)], order=1)
        transitions = np.count_nonzero(np.diff(np.append(samples, samples[0]) > 0.5))
        assert transitions == 2 * n_spokes
    corner = star[:10, :10]
    assert corner.max() == 0  # nothing outside the star's rim


def test_object_is_a_complex_star_with_the_requested_contrast() -> None:
    obj = synthesize_object(**OBJECT_ARGS, seed=3)
    assert obj.shape == (192, 192) and obj.dtype == np.complex64
    amplitude, phase = np.abs(obj), np.angle(obj)
    assert amplitude.min() >= 0.05 - 1e-6 and amplitude.max() <= 1.0 + 1e-6
    star = siemens_star_pattern(192, 18, 0.95)
    on, off = star > 0.99, star < 0.01
    assert abs(np.median(amplitude[on]) - 0.55) < 0.03 and abs(np.median(amplitude[off]) - 1.0) < 0.03
    assert abs(np.median(phase[on]) - 1.0) < 0.05 and abs(np.median(phase[off])) < 0.05
    # amplitude and phase differ (independent textures), they are not one image rescaled
    assert abs(np.corrcoef(amplitude[on], phase[on])[0, 1]) < 0.5


def test_object_amplitude_and_phase_carry_every_spatial_frequency() -> None:
    obj = synthesize_object(**OBJECT_ARGS, seed=3)
    for part in (np.abs(obj), np.angle(obj)):
        bands = band_powers(part)
        assert np.all(bands / bands[0] > 1e-5), bands / bands[0]
    # the criterion is not trivially met: a smooth (blurred) object fails it
    blurred = band_powers(ndimage.gaussian_filter(np.abs(obj), 4.0))
    assert blurred[-1] / blurred[0] < 1e-5


def test_object_is_reproducible_from_its_seed() -> None:
    first, again = synthesize_object(**OBJECT_ARGS, seed=3), synthesize_object(**OBJECT_ARGS, seed=3)
    other = synthesize_object(**OBJECT_ARGS, seed=4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert np.corrcoef(np.abs(first).ravel(), np.abs(other).ravel())[0, 1] > 0.9  # same star, new texture


@pytest.mark.parametrize("size", [32, 64, 128])
def test_probe_is_a_defocused_disc_of_diameter_about_half_n(size: int) -> None:
    probe = synthesize_probe(size, 0.5, size / 2)
    assert probe.shape == (size, size) and probe.dtype == np.complex64
    assert np.isclose(np.abs(probe).max(), 1.0)
    diameter = measure_probe_diameter(probe)
    assert 0.42 * size < diameter < 0.55 * size
    smaller = measure_probe_diameter(synthesize_probe(size, 0.5, 0.3 * size))
    assert smaller < 0.8 * diameter


@pytest.mark.parametrize("size", [32, 64, 128])
def test_probe_far_field_fits_the_detector_with_oversampling(size: int) -> None:
    probe = synthesize_probe(size, 0.5, size / 2)
    far_field = np.abs(np.fft.fftshift(np.fft.fft2(probe))) ** 2
    yy, xx = np.indices(far_field.shape)
    inside = np.hypot(yy - size // 2, xx - size // 2) <= 0.5 * size / 2 + 1  # pupil: half of Nyquist
    assert far_field[inside].sum() / far_field.sum() > 0.99


@pytest.mark.parametrize("size", [64, 128])
def test_probe_has_fresnel_rings_and_a_curved_phase(size: int) -> None:
    probe = synthesize_probe(size, 0.5, size / 2)
    profile = radial_profile(np.abs(probe))[: size // 4]
    assert profile[0] < 0.7 * profile.max()  # on-axis Fresnel minimum
    interior = profile[1:-1]
    minima = (interior < profile[:-2]) & (interior < profile[2:]) & (interior < 0.95 * profile.max())
    assert minima.any(), profile  # at least one ring inside the bright disc
    # geometric focus at distance a = N: the phase across the disc is −π x²/a
    row = np.unwrap(np.angle(probe[size // 2]).astype(np.float64))
    x = np.arange(size) - size // 2
    inside = np.abs(x) < 0.2 * size
    curvature, _, _ = np.polyfit(x[inside], row[inside], 2)
    assert curvature == pytest.approx(-np.pi / size, rel=0.15)


def test_measured_diameter_of_a_gaussian_beam_is_its_one_over_e_squared_diameter() -> None:
    yy, xx = np.indices((96, 96), dtype=np.float64)
    waist = 11.0
    for cy, cx in ((48.0, 48.0), (40.0, 55.0)):
        intensity = np.exp(-2 * ((yy - cy) ** 2 + (xx - cx) ** 2) / waist**2)
        assert measure_probe_diameter(np.sqrt(intensity)) == pytest.approx(2 * waist, abs=1.0)
