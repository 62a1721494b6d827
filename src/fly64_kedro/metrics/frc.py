"""Fourier ring correlation of two real images, in cycles per pixel."""

from __future__ import annotations

import numpy as np
from scipy.signal.windows import tukey


def _tapered(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Image minus its mean over the window's support, times the window."""
    return (image - image[window > 0].mean()) * window


def frc_curve(
    image1: np.ndarray, image2: np.ndarray, tukey_alpha: float, support: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """FRC(k) = Re Σ_ring F1·F2* / sqrt(Σ_ring |F1|² · Σ_ring |F2|²) and its ring frequencies.

    The real part, not the modulus: a ring whose components are anti-correlated (a
    contrast-inverted image) scores negative, not as agreement.

    Both images (H, W) are made mean-free and multiplied by the same window: a separable
    Tukey window (alpha = 0: none, 1: Hann) times ``support`` (H, W) bool, if given — the
    pixels that carry information (the cell's support), so that regions no method could
    reconstruct do not decorrelate the rings. A pixel of
    the 2-D spectrum at (fy, fx) cycles/px (numpy ``fftfreq`` per axis, so rectangular
    images need no crop) falls in ring r = round(|f| / Δ) with Δ = 1 / min(H, W); rings
    r = 1 … min(H, W)//2 are returned (the DC ring is empty once the mean is removed).
    Returns (frequency (R,) cycles/px = r·Δ, frc (R,) in [−1, 1]; NaN for a ring without power).
    """
    if image1.shape != image2.shape or image1.ndim != 2:
        raise ValueError(f"FRC needs two 2-D images of one shape; got {image1.shape} and {image2.shape}")
    height, width = image1.shape
    window = np.outer(tukey(height, tukey_alpha), tukey(width, tukey_alpha))
    if support is not None:
        window = window * support
    f1 = np.fft.fft2(_tapered(np.asarray(image1, np.float64), window))
    f2 = np.fft.fft2(_tapered(np.asarray(image2, np.float64), window))
    step = 1.0 / min(height, width)
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(height), np.fft.fftfreq(width), indexing="ij"))
    rings = np.rint(radius / step).astype(np.int64).ravel()
    n_rings = min(height, width) // 2 + 1
    keep = rings < n_rings
    rings = rings[keep]

    def ring_sum(values: np.ndarray) -> np.ndarray:
        return np.bincount(rings, weights=values.ravel()[keep], minlength=n_rings)

    cross = f1 * np.conj(f2)
    numerator = ring_sum(cross.real)
    denominator = np.sqrt(ring_sum(np.abs(f1) ** 2) * ring_sum(np.abs(f2) ** 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        curve = np.where(denominator > 0, numerator / denominator, np.nan)
    return np.arange(1, n_rings) * step, curve[1:]


def frc_crossing(frequency: np.ndarray, curve: np.ndarray, threshold: float) -> float:
    """Frequency (cycles/px) where the FRC drops below ``threshold``, searched from the curve's peak.

    The lowest rings hold few pixels and carry any slowly varying background a method
    leaves (e.g. a gentle phase drift), so a dip there says nothing about resolution: the
    search starts at the ring of the curve's maximum. The crossing is linearly
    interpolated between the last ring at or above the threshold and the first below it.
    A curve that never drops below returns the highest ring (resolution at least
    Nyquist); one that never reaches the threshold returns 0 cycles/px (nothing is
    resolved: e.g. an anti-correlated image). NaN rings count as below.
    """
    if not (curve >= threshold).any():
        return 0.0
    start = int(np.nanargmax(curve))
    below = ~(curve[start:] >= threshold)
    if not below.any():
        return float(frequency[-1])
    first = start + int(np.argmax(below))
    if first == start or np.isnan(curve[first]):
        return float(frequency[max(first - 1, start)])
    f0, f1 = frequency[first - 1], frequency[first]
    c0, c1 = curve[first - 1], curve[first]
    return float(f0 + (c0 - threshold) / (c0 - c1) * (f1 - f0))
