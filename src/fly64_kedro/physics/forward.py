"""Far-field forward model and photon statistics (pty-chi's conventions, see package doc)."""

from __future__ import annotations

import numpy as np
import scipy.fft


def patch_corners(ycoords: np.ndarray, xcoords: np.ndarray, patch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer top-left corners (n,) of the N×N patches centred on integer positions."""
    half = patch_size // 2
    return (np.rint(ycoords).astype(np.int64) - half, np.rint(xcoords).astype(np.int64) - half)


def extract_patches(obj: np.ndarray, ycoords: np.ndarray, xcoords: np.ndarray, patch_size: int) -> np.ndarray:
    """Object patches (n, N, N) centred on the (integer) positions; a strided gather, no loop."""
    top, left = patch_corners(ycoords, xcoords, patch_size)
    if top.size and (top.min() < 0 or left.min() < 0
                     or top.max() + patch_size > obj.shape[0] or left.max() + patch_size > obj.shape[1]):
        raise ValueError(
            f"positions must keep every {patch_size}×{patch_size} patch inside the object "
            f"{obj.shape}; got corners y∈[{top.min()}, {top.max()}], x∈[{left.min()}, {left.max()}]"
        )
    windows = np.lib.stride_tricks.sliding_window_view(obj, (patch_size, patch_size))
    return windows[top, left]


def far_field_intensity(exit_waves: np.ndarray, workers: int = -1) -> np.ndarray:
    """``|fftshift(fft2(ψ))|²`` over the last two axes, unnormalised FFT, float32 for complex64 input."""
    spectrum = scipy.fft.fft2(exit_waves, axes=(-2, -1), workers=workers)
    return np.fft.fftshift(np.abs(spectrum) ** 2, axes=(-2, -1))


def intensity_scale_for_dose(noiseless_intensity: np.ndarray, dose: float) -> float:
    """Scale s such that the mean over patterns of Σ s·I equals ``dose`` photons."""
    mean_total = float(noiseless_intensity.sum(axis=(-2, -1), dtype=np.float64).mean())
    if not mean_total > 0:
        raise ValueError(f"noiseless intensity must have a positive mean total; got {mean_total}")
    return dose / mean_total


def poisson_counts(expected_counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Photon counts ~ Poisson(expected), float32 array of non-negative integers."""
    return rng.poisson(expected_counts).astype(np.float32)
