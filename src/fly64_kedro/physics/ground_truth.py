"""Embedded default ground truth: a complex Siemens star and a zone-plate-like probe."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from fly64_kedro.physics.seeds import rng_for


def _supersampled_grid(size: int, supersample: int) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel sample coordinates (y, x), each (size·s, size·s), centred on the object."""
    axis = (np.arange(size * supersample) + 0.5) / supersample - size / 2
    return np.meshgrid(axis, axis, indexing="ij")


def _block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor×factor`` blocks: (H·f, W·f) → (H, W); anti-aliases a supersampled image."""
    h, w = image.shape[0] // factor, image.shape[1] // factor
    return image.reshape(h, factor, w, factor).mean(axis=(1, 3))


def siemens_star_pattern(
    size: int, n_spokes: int, radius_fraction: float, supersample: int = 4
) -> np.ndarray:
    """Anti-aliased binary Siemens star in [0, 1], shape (size, size).

    ``n_spokes`` dark/bright sector pairs out to ``radius_fraction·size/2``; the spoke
    period shrinks towards the centre, so the star holds every spatial frequency up to
    Nyquist. A thin ring at the rim and one at half radius add radial edges.
    """
    y, x = _supersampled_grid(size, supersample)
    radius = np.hypot(y, x)
    outer = radius_fraction * size / 2
    spokes = (np.cos(n_spokes * np.arctan2(y, x)) > 0).astype(np.float64)
    rings = (np.abs(radius - outer) < 2.0) | (np.abs(radius - outer / 2) < 1.5)
    star = np.where(radius <= outer, spokes, 0.0)
    star = np.maximum(star, rings.astype(np.float64))
    return _block_mean(star, supersample)


def smooth_random_texture(
    shape: tuple[int, int], correlation_px: float, rng: np.random.Generator
) -> np.ndarray:
    """Gaussian random field with unit standard deviation and correlation length in px."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), correlation_px, mode="wrap")
    return field / field.std()


def synthesize_object(
    size: int,
    n_spokes: int,
    radius_fraction: float,
    amplitude_range: tuple[float, float],
    phase_range_rad: float,
    texture_amplitude: float,
    texture_phase_rad: float,
    texture_correlation_px: float,
    seed: int,
) -> np.ndarray:
    """Complex Siemens-star test object, (size, size) complex64.

    Amplitude is ``amplitude_range[1]`` off the spokes and ``amplitude_range[0]`` on them;
    the phase is ``phase_range_rad`` on the spokes. Independent fine textures
    (std ``texture_amplitude`` and ``texture_phase_rad``) keep the metrics from saturating
    and make amplitude and phase differ.
    """
    star = siemens_star_pattern(size, n_spokes, radius_fraction)
    rng = rng_for(seed, "object_texture")
    amp_texture = smooth_random_texture((size, size), texture_correlation_px, rng)
    phase_texture = smooth_random_texture((size, size), texture_correlation_px, rng)
    low, high = amplitude_range
    amplitude = high - (high - low) * star + texture_amplitude * amp_texture
    amplitude = np.clip(amplitude, 0.05, 1.0)
    phase = phase_range_rad * star + texture_phase_rad * phase_texture
    return (amplitude * np.exp(1j * phase)).astype(np.complex64)


def synthesize_probe(size: int, pupil_radius_fraction: float, defocus_diameter_px: float) -> np.ndarray:
    """Defocused zone-plate probe, (size, size) complex64 with peak amplitude 1.

    A circular pupil of radius ``pupil_radius_fraction`` × Nyquist with a quadratic
    (defocus) phase; its inverse FFT is a bright disc of geometric diameter
    ``defocus_diameter_px`` with Fresnel rings and a curved phase.
    """
    freq = np.fft.fftfreq(size)
    ky, kx = np.meshgrid(freq, freq, indexing="ij")
    k = np.hypot(ky, kx)
    k_edge = pupil_radius_fraction * 0.5
    pupil = 0.5 * (1.0 - np.tanh((k - k_edge) * size / 1.0))  # ~1 px soft edge
    # geometric ray position x = a·k, so the disc radius is a·k_edge
    a = (defocus_diameter_px / 2) / k_edge
    field = np.fft.fftshift(np.fft.ifft2(pupil * np.exp(1j * np.pi * a * k**2)))
    return (field / np.abs(field).max()).astype(np.complex64)


def measure_probe_diameter(probe: np.ndarray, energy_fraction: float = 1 - np.exp(-2)) -> float:
    """Diameter (px) of the disc about the intensity centroid holding ``energy_fraction``.

    The default 1 − 1/e² ≈ 0.865 is the usual beam-diameter definition.
    """
    intensity = np.abs(probe) ** 2
    yy, xx = np.indices(intensity.shape, dtype=np.float64)
    total = intensity.sum()
    cy, cx = (intensity * yy).sum() / total, (intensity * xx).sum() / total
    radius = np.hypot(yy - cy, xx - cx).ravel()
    order = np.argsort(radius)
    cumulative = np.cumsum(intensity.ravel()[order]) / total
    index = int(np.searchsorted(cumulative, energy_fraction))
    return float(2 * radius[order][min(index, radius.size - 1)])
