"""Grouping: gridsize 1 singletons; gridsize 2 anchors with C − 1 of their K nearest neighbours, or groups in a
view's overlap regime (every member pair at least S apart)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fly64_kedro.pinn.grouping import (
    inference_groups,
    nearest_neighbours,
    regime_groups,
    training_groups,
)


def _positions(n: int = 80, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 200, n).astype(np.float64), rng.integers(0, 200, n).astype(np.float64)


def _k_nearest_sets(y: np.ndarray, x: np.ndarray, k: int) -> list[set[int]]:
    """Brute force: for each position, the positions within its k-th nearest distance (ties included)."""
    d = np.hypot(y[:, None] - y[None], x[:, None] - x[None])
    np.fill_diagonal(d, np.inf)
    kth = np.sort(d, axis=1)[:, k - 1]
    return [set(np.flatnonzero(row <= radius)) for row, radius in zip(d, kth, strict=True)]


def test_gridsize_one_keeps_every_position_alone() -> None:
    y, x = _positions()
    groups = training_groups(y, x, 1, 7, 5, np.random.default_rng(0))
    np.testing.assert_array_equal(groups.indices[:, 0], np.arange(y.size))
    assert groups.offsets.shape == (y.size, 1, 2) and not groups.offsets.any()


@pytest.mark.parametrize("per_anchor", [1, 4, 50])
def test_gridsize_two_draws_distinct_members_among_the_k_nearest(per_anchor: int) -> None:
    y, x = _positions()
    k = 7
    groups = training_groups(y, x, 2, k, per_anchor, np.random.default_rng(0))
    per_anchor_eff = min(per_anchor, math.comb(k, 3))
    assert groups.indices.shape == (y.size * per_anchor_eff, 4)
    near = _k_nearest_sets(y, x, k)
    anchors = groups.indices[:, 0]
    np.testing.assert_array_equal(anchors, np.repeat(np.arange(y.size), per_anchor_eff))
    for row in groups.indices:
        assert len(set(row.tolist())) == 4                        # no position twice in a group
        assert set(row[1:].tolist()) <= near[row[0]]              # members among the anchor's K nearest
    for anchor in range(y.size):                                  # no neighbour subset twice per anchor
        subsets = {tuple(sorted(r[1:])) for r in groups.indices[anchors == anchor].tolist()}
        assert len(subsets) == per_anchor_eff


def test_offsets_are_relative_to_the_rounded_group_centroid() -> None:
    y, x = _positions()
    groups = training_groups(y, x, 2, 7, 3, np.random.default_rng(0))
    members = np.stack([y[groups.indices], x[groups.indices]], axis=-1)
    centre = members - groups.offsets
    assert (centre == centre[:, :1]).all()                        # one centre per group
    np.testing.assert_allclose(centre[:, 0], np.rint(members.mean(axis=1)))


def test_grouping_is_seeded() -> None:
    y, x = _positions()
    first = training_groups(y, x, 2, 7, 4, np.random.default_rng(11))
    again = training_groups(y, x, 2, 7, 4, np.random.default_rng(11))
    other = training_groups(y, x, 2, 7, 4, np.random.default_rng(12))
    np.testing.assert_array_equal(first.indices, again.indices)
    assert not np.array_equal(first.indices, other.indices)


def test_k_below_group_size_and_too_few_positions_are_rejected() -> None:
    y, x = _positions()
    with pytest.raises(ValueError, match="K must be ≥ C = gridsize² = 4"):
        training_groups(y, x, 2, 3, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="needs 4 positions; got 3"):
        training_groups(y[:3], x[:3], 2, 7, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="needs 4 positions; got 2"):
        inference_groups(y[:2], x[:2], 2)


def test_small_views_use_every_other_position_as_neighbour() -> None:
    y, x = _positions(5)
    groups = training_groups(y, x, 2, 7, 100, np.random.default_rng(0))
    assert len(groups) == 5 * math.comb(4, 3)                     # K capped at n − 1 = 4


def test_coincident_positions_are_never_their_own_neighbour() -> None:
    y = np.array([0.0, 0.0, 0.0, 5.0, 9.0])
    x = np.array([0.0, 0.0, 0.0, 5.0, 9.0])
    neighbours = nearest_neighbours(y, x, 3)
    assert not (neighbours == np.arange(5)[:, None]).any()


def test_inference_groups_are_each_position_with_its_nearest() -> None:
    y, x = _positions()
    groups = inference_groups(y, x, 2)
    np.testing.assert_array_equal(groups.indices[:, 0], np.arange(y.size))
    d = np.hypot(y[:, None] - y[None], x[:, None] - x[None])
    np.fill_diagonal(d, np.inf)
    member_distance = np.take_along_axis(d, groups.indices[:, 1:], axis=1)
    np.testing.assert_allclose(member_distance, np.sort(d, axis=1)[:, :3])


def test_regime_groups_keep_the_views_spacing_between_every_member_pair() -> None:
    y, x = _positions(n=400, seed=5)
    spacing = 19.2
    groups = regime_groups(y, x, 2, spacing, 3, np.random.default_rng(0))
    assert groups.group_size == 4 and len(groups) > 400  # far more groups than a spaced view would hold
    assert groups.indices.min() >= 0 and groups.indices.max() < y.size  # members only from the positions given
    members = np.stack([y[groups.indices], x[groups.indices]], axis=-1)  # (G, 4, 2)
    pair = np.linalg.norm(members[:, :, None] - members[:, None], axis=-1)
    off_diagonal = ~np.eye(4, dtype=bool)
    assert pair[:, off_diagonal].min() >= spacing
    assert pair[:, 0, 1:].max() < 2 * spacing  # every member within 2S of the anchor (channel 0)
    assert np.all(np.diff(pair[:, 0, 1:], axis=1) >= 0)  # the others by distance from the anchor
    assert len({tuple(g) for g in groups.indices}) == len(groups)
    np.testing.assert_array_equal(groups.offsets, members - np.rint(members.mean(axis=1, keepdims=True)))


def test_regime_groups_refuse_positions_too_close_to_form_any_group() -> None:
    y, x = np.arange(10.0), np.zeros(10)  # on a line, 1 px apart
    with pytest.raises(ValueError, match="no group of 4 positions at least 19.2 px apart"):
        regime_groups(y, x, 2, 19.2, 3, np.random.default_rng(0))
