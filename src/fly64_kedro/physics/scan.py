"""Scan positions and the spatial train/test split."""

from __future__ import annotations

import numpy as np


def scan_bounds(object_shape: tuple[int, int], patch_size: int) -> tuple[int, int, int, int]:
    """Inclusive integer range (y_min, y_max, x_min, x_max) of positions keeping patches inside."""
    half = patch_size // 2
    return half, object_shape[0] - half, half, object_shape[1] - half


def random_positions(
    object_shape: tuple[int, int], patch_size: int, n_positions: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random integer positions (y, x), each (n,) float64, in the object minus N/2."""
    y_min, y_max, x_min, x_max = scan_bounds(object_shape, patch_size)
    y = rng.integers(y_min, y_max, size=n_positions, endpoint=True)
    x = rng.integers(x_min, x_max, size=n_positions, endpoint=True)
    return y.astype(np.float64), x.astype(np.float64)


def raster_positions(
    object_shape: tuple[int, int], patch_size: int, n_positions: int, jitter_px: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """A square raster of about ``n_positions`` with uniform jitter, rounded to pixels."""
    y_min, y_max, x_min, x_max = scan_bounds(object_shape, patch_size)
    side = max(int(round(np.sqrt(n_positions))), 1)
    gy, gx = np.meshgrid(np.linspace(y_min, y_max, side), np.linspace(x_min, x_max, side), indexing="ij")
    y = gy.ravel() + rng.uniform(-jitter_px, jitter_px, side * side)
    x = gx.ravel() + rng.uniform(-jitter_px, jitter_px, side * side)
    y = np.clip(np.rint(y), y_min, y_max)
    x = np.clip(np.rint(x), x_min, x_max)
    return y.astype(np.float64), x.astype(np.float64)


def split_threshold(coords: np.ndarray) -> float:
    """Midpoint of the scanned range along one axis: min + (max − min)/2."""
    return float(coords.min() + 0.5 * (coords.max() - coords.min()))


def spatial_split_masks(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(train, test, threshold): train = coord < threshold, test = coord ≥ threshold."""
    threshold = split_threshold(coords)
    train = coords < threshold
    return train, ~train, threshold
