"""Scan positions and the spatial split."""

from __future__ import annotations

import numpy as np
import pytest

from fly64_kedro.physics.forward import extract_patches
from fly64_kedro.physics.scan import (
    random_positions,
    raster_positions,
    scan_bounds,
    spatial_split_masks,
    split_threshold,
)

SHAPE, N = (150, 200), 32


def assert_inside_with_border(y: np.ndarray, x: np.ndarray) -> None:
    """Every N×N patch centred on (y, x) lies inside the object: border N/2 on each side."""
    assert np.all(y - N // 2 >= 0) and np.all(y + N // 2 <= SHAPE[0])
    assert np.all(x - N // 2 >= 0) and np.all(x + N // 2 <= SHAPE[1])


def test_random_positions_are_integer_pixels_inside_the_object_with_the_border() -> None:
    y, x = random_positions(SHAPE, N, 5000, np.random.default_rng(0))
    assert y.dtype == x.dtype == np.float64 and y.shape == x.shape == (5000,)
    np.testing.assert_array_equal(y, np.rint(y))
    assert_inside_with_border(y, x)
    # uniform over the whole allowed range: both extremes are reached, the mean is central
    y_min, y_max, x_min, x_max = scan_bounds(SHAPE, N)
    assert (y.min(), y.max(), x.min(), x.max()) == (y_min, y_max, x_min, x_max)
    assert abs(y.mean() - (y_min + y_max) / 2) < 4 * (y_max - y_min) / np.sqrt(12 * 5000)
    extract_patches(np.zeros(SHAPE, np.complex64), y, x, N)  # every patch can be cut out


def test_random_positions_depend_only_on_the_stream() -> None:
    first = random_positions(SHAPE, N, 50, np.random.default_rng(1))
    again = random_positions(SHAPE, N, 50, np.random.default_rng(1))
    other = random_positions(SHAPE, N, 50, np.random.default_rng(2))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_scan_bounds_are_the_last_positions_whose_patch_fits() -> None:
    y_min, y_max, x_min, x_max = scan_bounds(SHAPE, N)
    obj = np.zeros(SHAPE, np.complex64)
    extract_patches(obj, np.array([y_min, y_max], float), np.array([x_min, x_max], float), N)
    for y, x in ((y_min - 1, x_min), (y_max + 1, x_min), (y_min, x_min - 1), (y_min, x_max + 1)):
        with pytest.raises(ValueError):
            extract_patches(obj, np.array([float(y)]), np.array([float(x)]), N)


def test_raster_positions_form_a_jittered_grid_inside_the_border() -> None:
    jitter = 2.0
    y, x = raster_positions(SHAPE, N, 100, jitter, np.random.default_rng(3))
    assert y.size == 100
    np.testing.assert_array_equal(y, np.rint(y))
    assert_inside_with_border(y, x)
    y_min, y_max, x_min, x_max = scan_bounds(SHAPE, N)
    grid_y, grid_x = np.meshgrid(np.linspace(y_min, y_max, 10), np.linspace(x_min, x_max, 10), indexing="ij")
    assert np.all(np.abs(y - grid_y.ravel()) <= jitter + 0.5)
    assert np.all(np.abs(x - grid_x.ravel()) <= jitter + 0.5)
    assert np.any(y != np.rint(grid_y.ravel()))  # jitter is applied


def test_split_is_disjoint_covering_and_at_the_midpoint_of_the_scanned_range() -> None:
    y, _ = random_positions(SHAPE, N, 400, np.random.default_rng(4))
    train, test, threshold = spatial_split_masks(y)
    assert threshold == split_threshold(y) == y.min() + (y.max() - y.min()) / 2
    assert not np.any(train & test) and np.all(train | test)
    assert np.all(y[train] < threshold) and np.all(y[test] >= threshold)
    assert 0.3 < train.mean() < 0.7


def test_split_threshold_follows_the_scanned_range_not_the_object() -> None:
    coords = np.array([40.0, 41.0, 50.0, 60.0])
    train, test, threshold = spatial_split_masks(coords)
    assert threshold == 50.0
    np.testing.assert_array_equal(train, [True, True, False, False])
    np.testing.assert_array_equal(test, [False, False, True, True])
