"""Minimum-spacing selection and disc-overlap geometry against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from fly64_kedro.parameters.study import ViewSpec
from fly64_kedro.physics.selection import (
    acceptance_floor,
    as_points,
    direct_selection,
    greedy_selection,
    lens_overlap_fraction,
    measured_overlap,
    select_min_spacing,
)

# ---------------------------------------------------------------- references (O(n²), plain Python)


def far_enough(p: tuple[float, float], q: tuple[float, float], spacing: float) -> bool:
    """The contract's definition of "at least S apart": dy² + dx² ≥ S²."""
    return (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 >= spacing**2


def greedy_reference(points: list[tuple[float, float]], spacing: float) -> list[bool]:
    """The original's greedy rule, written out: walk by (y, x, index), keep if far from every kept one."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1], i))
    kept: list[int] = []
    for i in order:
        if all(far_enough(points[i], points[j], spacing) for j in kept):
            kept.append(i)
    return [i in kept for i in range(len(points))]


def direct_reference(points: list[tuple[float, float]], spacing: float) -> list[bool]:
    """Keep a point iff every other point is at least S away."""
    return [all(far_enough(p, q, spacing) for j, q in enumerate(points) if j != i) for i, p in enumerate(points)]


def lens_area_by_raster(distance: float, diameter: float, samples: int = 2000) -> float:
    """Lens fraction by counting grid cells inside both discs (an independent numerical check)."""
    r = diameter / 2
    axis = (np.arange(samples) + 0.5) / samples * 2 * r - r
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    first = xx**2 + yy**2 <= r**2
    second = (xx - distance) ** 2 + yy**2 <= r**2
    return float((first & second).sum() / first.sum())


point_sets = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=1, max_size=50)
spacings = st.floats(min_value=0.5, max_value=30.0, allow_nan=False)


# ---------------------------------------------------------------- lens formula


def test_lens_fraction_at_landmarks() -> None:
    diameter = 30.0
    assert lens_overlap_fraction(0.0, diameter) == pytest.approx(1.0, abs=1e-12)
    assert lens_overlap_fraction(diameter / 2, diameter) == pytest.approx(2 / 3 - math.sqrt(3) / (2 * math.pi), abs=1e-12)
    assert lens_overlap_fraction(diameter / 2, diameter) == pytest.approx(0.391, abs=5e-4)
    np.testing.assert_array_equal(lens_overlap_fraction(np.array([diameter, 1.5 * diameter, 1e6]), diameter), 0.0)


@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.5, 0.8, 0.95])
def test_lens_fraction_matches_raster_integration(ratio: float) -> None:
    diameter = 20.0
    expected = lens_area_by_raster(ratio * diameter, diameter)
    assert lens_overlap_fraction(ratio * diameter, diameter) == pytest.approx(expected, abs=2e-3)


def test_lens_fraction_symmetric_and_decreasing() -> None:
    diameter = 12.0
    d = np.linspace(0, 1.2 * diameter, 400)
    values = lens_overlap_fraction(d, diameter)
    np.testing.assert_array_equal(values, lens_overlap_fraction(-d, diameter))
    inside = d < diameter
    assert (np.diff(values[inside]) < 0).all()
    assert ((values >= 0) & (values <= 1)).all()


def test_lens_fraction_rejects_bad_diameter() -> None:
    for bad in (0.0, -3.0, float("nan")):
        with pytest.raises(ValueError, match="diameter"):
            lens_overlap_fraction(1.0, bad)


# ---------------------------------------------------------------- selection rules vs references


@settings(max_examples=150, deadline=None)
@given(points=point_sets, spacing=spacings)
def test_greedy_equals_brute_force_and_is_maximal(points: list[tuple[int, int]], spacing: float) -> None:
    array = np.array(points, dtype=np.float64)
    keep = greedy_selection(array, spacing)
    assert keep.tolist() == greedy_reference([tuple(map(float, p)) for p in points], spacing)
    kept, rejected = array[keep], array[~keep]
    # every kept pair is at least S apart
    d2 = ((kept[:, None, :] - kept[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    assert (d2 >= spacing**2).all()
    # maximal: every rejected position is closer than S to a kept one
    if len(rejected):
        d2_rejected = ((rejected[:, None, :] - kept[None, :, :]) ** 2).sum(-1)
        assert (d2_rejected.min(axis=1) < spacing**2).all()


@settings(max_examples=150, deadline=None)
@given(points=point_sets, spacing=spacings)
def test_direct_equals_brute_force(points: list[tuple[int, int]], spacing: float) -> None:
    keep = direct_selection(np.array(points, dtype=np.float64), spacing)
    assert keep.tolist() == direct_reference([tuple(map(float, p)) for p in points], spacing)


@settings(max_examples=150, deadline=None)
@given(points=point_sets, spacing=spacings, minimum=st.floats(min_value=0.0, max_value=1.0))
def test_selection_follows_the_rule(points: list[tuple[int, int]], spacing: float, minimum: float) -> None:
    # bound_factor tiny → the floor is `minimum`, so both branches of the rule are drawn
    as_tuples = [tuple(map(float, p)) for p in points]
    direct, greedy = direct_reference(as_tuples, spacing), greedy_reference(as_tuples, spacing)
    array = np.array(points, dtype=np.float64)
    result = select_min_spacing(array[:, 0], array[:, 1], spacing, bound_cap=0.1, bound_factor=1e-9, minimum=minimum)
    assert result.direct_acceptance_rate == pytest.approx(np.mean(direct))
    expected = direct if np.mean(direct) >= result.effective_min_acceptance else greedy
    assert result.keep.tolist() == expected
    assert result.strategy == ("direct" if expected is direct else "greedy")


def test_crowded_scan_direct_and_greedy_match_references() -> None:
    # 2500 crowded positions keep few (< n/32), so the walk finishes early and gives the
    # direct rule as well; 8 isolated positions far away are what direct keeps
    rng = np.random.default_rng(11)
    crowd = rng.uniform(0, 100, size=(2500, 2))
    loners = np.array([[300.0 + 40 * i, 300.0 + 25 * (i % 3)] for i in range(8)])
    points = rng.permutation(np.vstack([crowd, loners]))
    spacing = 15.0
    d2 = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    direct = d2.min(axis=1) >= spacing**2
    assert direct.sum() == len(loners)
    as_tuples = [tuple(p) for p in points]
    greedy = np.array(greedy_reference(as_tuples, spacing))
    assert greedy.sum() < len(points) // 32
    floor_at = {"bound_cap": 0.1, "bound_factor": 1e-9}
    chose_direct = select_min_spacing(points[:, 0], points[:, 1], spacing, minimum=direct.mean(), **floor_at)
    assert chose_direct.strategy == "direct"
    np.testing.assert_array_equal(chose_direct.keep, direct)
    chose_greedy = select_min_spacing(points[:, 0], points[:, 1], spacing, minimum=0.5, **floor_at)
    assert chose_greedy.strategy == "greedy" and chose_greedy.below_floor
    assert chose_greedy.direct_acceptance_rate == pytest.approx(direct.mean())
    np.testing.assert_array_equal(chose_greedy.keep, greedy)
    np.testing.assert_array_equal(greedy_selection(points, spacing), greedy)


def test_ties_at_exactly_s_are_kept() -> None:
    # a 3-4-5 triangle: distances 3, 4, 5 exactly
    points = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    assert greedy_selection(points, 3.0).all()
    assert direct_selection(points, 3.0).all()
    assert greedy_selection(points, 3.0000001).tolist() == [True, False, True]
    assert direct_selection(points, 3.0000001).tolist() == [False, False, True]


def test_greedy_is_deterministic_and_independent_of_input_order() -> None:
    rng = np.random.default_rng(7)
    points = np.unique(rng.integers(0, 300, size=(400, 2)).astype(np.float64), axis=0)
    keep = greedy_selection(points, 19.2)
    np.testing.assert_array_equal(keep, greedy_selection(points, 19.2))
    permutation = rng.permutation(len(points))
    kept_after_shuffle = points[permutation][greedy_selection(points[permutation], 19.2)]
    assert {tuple(p) for p in kept_after_shuffle} == {tuple(p) for p in points[keep]}


# ---------------------------------------------------------------- floor and strategy choice


def test_floor_formula() -> None:
    # box 100 (y) × 50 (x) px, n = 10, S = 10 → bound = 5000 / (10 π 25) ≈ 6.37, capped at 0.10
    y = np.array([0, 100, 0, 100, 50, 20, 30, 40, 60, 70], dtype=float)
    x = np.array([0, 50, 50, 0, 25, 10, 10, 10, 10, 10], dtype=float)
    points = as_points(y, x)
    assert acceptance_floor(points, 10.0, bound_cap=0.10, bound_factor=0.8, minimum=0.0005) == pytest.approx((0.10, 0.08))
    # S = 100 → bound = 5000 / (10 π 2500) = 0.0637, floor = 0.8 · bound
    bound, floor = acceptance_floor(points, 100.0, bound_cap=0.10, bound_factor=0.8, minimum=0.0005)
    assert bound == pytest.approx(5000 / (10 * math.pi * 2500))
    assert floor == pytest.approx(0.8 * bound)
    # a degenerate box (one row) → bound 0 and the absolute minimum rules
    line = as_points(np.zeros(5), np.arange(5.0))
    assert acceptance_floor(line, 2.0, bound_cap=0.10, bound_factor=0.8, minimum=0.0005) == (0.0, 0.0005)


def _cluster_and_loners() -> tuple[np.ndarray, np.ndarray]:
    """10 positions: 4 isolated loners (direct keeps them) and a tight cluster of 6."""
    loners = [(0, 0), (0, 100), (100, 0), (100, 100)]
    cluster = [(50, 50), (50, 52), (52, 50), (52, 52), (54, 50), (54, 54)]
    points = np.array(loners + cluster, dtype=float)
    return points[:, 0], points[:, 1]


def test_direct_kept_at_the_floor_greedy_below_it() -> None:
    y, x = _cluster_and_loners()
    spacing = 10.0
    assert direct_selection(as_points(y, x), spacing).mean() == pytest.approx(0.4)
    # the floor equals the direct rate (bound_factor tiny → floor = minimum): direct is kept
    at = select_min_spacing(y, x, spacing, bound_cap=0.10, bound_factor=1e-6, minimum=0.4)
    assert at.strategy == "direct" and at.acceptance_rate == pytest.approx(0.4) and not at.below_floor
    np.testing.assert_array_equal(at.keep, [True] * 4 + [False] * 6)
    # just above the direct rate: greedy, which also keeps one position of the cluster
    above = select_min_spacing(y, x, spacing, bound_cap=0.10, bound_factor=1e-6, minimum=0.41)
    assert above.strategy == "greedy" and above.direct_acceptance_rate == pytest.approx(0.4)
    assert above.acceptance_rate == pytest.approx(0.5) and not above.below_floor
    # a floor greedy cannot reach: the greedy set is kept and flagged
    unreachable = select_min_spacing(y, x, spacing, bound_cap=0.10, bound_factor=1e-6, minimum=0.9)
    assert unreachable.strategy == "greedy" and unreachable.below_floor and unreachable.keep.sum() == 5


# ---------------------------------------------------------------- measured overlap


def test_measured_overlap_of_simple_layouts() -> None:
    diameter = 20.0
    # two positions D/2 apart: K is capped at 1, overlap 0.391
    overlap, k = measured_overlap(np.array([0.0, 10.0]), np.array([0.0, 0.0]), diameter, 7)
    assert k == 1 and overlap == pytest.approx(lens_overlap_fraction(10.0, diameter))
    # three in a row, 10 px apart, K = 2: ends see 10 and 20 px, the middle sees 10 and 10 px
    overlap, k = measured_overlap(np.array([0.0, 10.0, 20.0]), np.zeros(3), diameter, 2)
    f10, f20 = lens_overlap_fraction(10.0, diameter), lens_overlap_fraction(20.0, diameter)
    assert k == 2 and overlap == pytest.approx((2 * (f10 + f20) + 2 * f10) / 6)
    # exact duplicates overlap fully; one position has no neighbour
    assert measured_overlap(np.array([5.0, 5.0]), np.array([1.0, 1.0]), diameter, 3) == (pytest.approx(1.0), 1)
    assert measured_overlap(np.array([5.0]), np.array([1.0]), diameter, 3) == (None, 0)


def test_selected_views_overlap_less_than_all_positions() -> None:
    rng = np.random.default_rng(3)
    y, x = rng.integers(32, 352, size=(2, 400)).astype(float)
    all_overlap, _ = measured_overlap(y, x, 30.0, 7)
    dense = select_min_spacing(y, x, 19.2).keep
    sparse = select_min_spacing(y, x, 51.2).keep
    dense_overlap, _ = measured_overlap(y[dense], x[dense], 30.0, 7)
    sparse_overlap, _ = measured_overlap(y[sparse], x[sparse], 30.0, 7)
    assert all_overlap > dense_overlap > sparse_overlap
    assert sparse_overlap == 0.0  # S = 51.2 px ≥ D = 30 px: kept discs never meet


# ---------------------------------------------------------------- bad input


def test_bad_input_gives_clear_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        select_min_spacing(np.array([]), np.array([]), 10.0)
    with pytest.raises(ValueError, match="NaN/inf .* index 1"):
        select_min_spacing(np.array([1.0, np.nan]), np.array([1.0, 2.0]), 10.0)
    with pytest.raises(ValueError, match="equal length"):
        select_min_spacing(np.array([1.0, 2.0]), np.array([1.0]), 10.0)
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="spacing threshold S"):
            select_min_spacing(np.array([1.0, 2.0]), np.array([1.0, 2.0]), bad)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_overlap_fraction_outside_unit_interval_is_refused(fraction: float) -> None:
    with pytest.raises(ValidationError, match=r"overlap_fraction must be in \[0, 1\)"):
        ViewSpec(overlap_fraction=fraction, gridsize=2)
