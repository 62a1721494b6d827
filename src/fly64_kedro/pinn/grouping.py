"""Grouping of scan positions into the network's input groups (PtychoPINN's ``gridsize``).

Gridsize g gives groups of C = g² positions. g = 1: every position alone. g = 2, from a
view's own positions: for each anchor, C − 1 of its K nearest neighbours (scipy cKDTree),
drawn without replacement; several distinct draws per anchor (K-choose-(C−1)
oversampling). g = 2 in the view's *regime* (``regime_groups``): from all positions of a
split, groups whose members keep the view's minimum spacing S from each other, each member
within 2S of the anchor, as neighbours in a view of spacing S are. The anchor is always
channel 0, the other members follow by distance from it, at training and inference.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree


@dataclass(frozen=True)
class Groups:
    """Groups of scan positions.

    ``indices`` (G, C) int64 index the positions; ``offsets`` (G, C, 2) int64 are each
    member's (dy, dx) in px from the group centre, the member centroid rounded to whole
    pixels (positions are whole pixels, so every shift of the physics layer is exact).
    """

    indices: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    @property
    def group_size(self) -> int:
        """C, positions per group."""
        return int(self.indices.shape[1])


def group_size(gridsize: int) -> int:
    """C = gridsize²."""
    return gridsize * gridsize


def nearest_neighbours(ycoords: np.ndarray, xcoords: np.ndarray, k: int) -> np.ndarray:
    """Indices (n, k) of each position's k nearest other positions, nearest first.

    A position is never its own neighbour, also where positions coincide.
    """
    points = np.column_stack([ycoords, xcoords])
    n = points.shape[0]
    if not 0 < k < n:
        raise ValueError(f"need 0 < k < n positions for neighbours; got k={k}, n={n}")
    _, found = cKDTree(points).query(points, k=k + 1)
    found = np.asarray(found, dtype=np.int64).reshape(n, k + 1)
    is_self = found == np.arange(n)[:, None]
    # stable sort moves the position itself (present once, or absent when it ties) to the end
    order = np.argsort(is_self, axis=1, kind="stable")
    return np.take_along_axis(found, order, axis=1)[:, :k]


def _offsets_from_centroid(ycoords: np.ndarray, xcoords: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """(G, C, 2) int64 member offsets from the rounded group centroid."""
    members = np.stack([ycoords[indices], xcoords[indices]], axis=-1)
    centre = np.rint(members.mean(axis=1, keepdims=True))
    return np.rint(members - centre).astype(np.int64)


def _singletons(n: int) -> Groups:
    return Groups(np.arange(n, dtype=np.int64)[:, None], np.zeros((n, 1, 2), dtype=np.int64))


def training_groups(
    ycoords: np.ndarray,
    xcoords: np.ndarray,
    gridsize: int,
    neighbor_count: int,
    groups_per_anchor: int,
    rng: np.random.Generator,
) -> Groups:
    """Training groups: each anchor with C − 1 of its K nearest neighbours.

    Per anchor, ``min(groups_per_anchor, K-choose-(C−1))`` distinct neighbour subsets are
    drawn with ``rng`` (no subset twice, no neighbour twice in a group). K is capped at
    n − 1 where the view holds fewer positions. Raises ``ValueError`` if K < C or if
    there are fewer than C positions.
    """
    c = group_size(gridsize)
    n = int(np.asarray(ycoords).shape[0])
    if neighbor_count < c:
        raise ValueError(f"neighbor_count K must be ≥ C = gridsize² = {c}; got K={neighbor_count}")
    if n < c:
        raise ValueError(f"a group of gridsize {gridsize} needs {c} positions; got {n}")
    if c == 1:
        return _singletons(n)
    k = min(neighbor_count, n - 1)
    neighbours = nearest_neighbours(ycoords, xcoords, k)
    subsets = np.array(list(itertools.combinations(range(k), c - 1)), dtype=np.int64)  # (M, C−1) ranks
    per_anchor = min(groups_per_anchor, subsets.shape[0])
    picks = rng.random((n, subsets.shape[0])).argsort(axis=1)[:, :per_anchor]  # distinct subsets
    members = neighbours[np.arange(n)[:, None, None], subsets[picks]]  # (n, per_anchor, C−1)
    anchors = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None, None], (n, per_anchor, 1))
    indices = np.concatenate([anchors, members], axis=2).reshape(-1, c)
    return Groups(indices, _offsets_from_centroid(ycoords, xcoords, indices))


def regime_groups(
    ycoords: np.ndarray,
    xcoords: np.ndarray,
    gridsize: int,
    spacing: float,
    groups_per_anchor: int,
    rng: np.random.Generator,
) -> Groups:
    """Groups in a view's overlap regime, drawn from every position given (e.g. a whole train split).

    For each anchor, members are drawn in random order from the positions at distances
    [S, 2S) from it, a candidate joining when it is at least S from every member so far;
    ``groups_per_anchor`` such draws per anchor, duplicates dropped. An anchor without C − 1
    such neighbours anchors no group. Every member pair of every group is ≥ S apart, so the
    network sees groups that overlap as the view's do, with far more patterns than the view
    holds. Raises ``ValueError`` when no group can be formed.
    """
    c = group_size(gridsize)
    points = np.column_stack([ycoords, xcoords]).astype(np.float64)
    if c == 1:
        return _singletons(len(points))
    tree = cKDTree(points)
    limit = spacing * spacing
    groups: set[tuple[int, ...]] = set()
    for anchor, near in enumerate(tree.query_ball_point(points, 2 * spacing)):
        near = np.asarray(near, dtype=np.int64)
        d2 = ((points[near] - points[anchor]) ** 2).sum(axis=1)
        pool = near[(d2 >= limit) & (d2 < 4 * limit)]
        for _ in range(groups_per_anchor):
            members = [anchor]
            for candidate in rng.permutation(pool):
                if all(((points[candidate] - points[m]) ** 2).sum() >= limit for m in members):
                    members.append(int(candidate))
                    if len(members) == c:
                        break
            if len(members) == c:
                rest = sorted(members[1:], key=lambda m: (((points[m] - points[anchor]) ** 2).sum(), m))
                groups.add((anchor, *rest))
    if not groups:
        raise ValueError(f"no group of {c} positions at least {spacing:g} px apart (within {2 * spacing:g} px of "
                         f"an anchor) among {len(points)} positions")
    indices = np.array(sorted(groups), dtype=np.int64)
    return Groups(indices, _offsets_from_centroid(np.asarray(ycoords), np.asarray(xcoords), indices))


def split_positions(n_positions: int, validation_fraction: float,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) position indices, sorted: validation holds out whole positions.

    At least one position on each side when the fraction is > 0 and there are two or more.
    """
    order = rng.permutation(n_positions)
    n_validation = round(validation_fraction * n_positions)
    if validation_fraction > 0 and n_positions >= 2:
        n_validation = min(max(n_validation, 1), n_positions - 1)
    else:
        n_validation = 0
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])


def inference_groups(ycoords: np.ndarray, xcoords: np.ndarray, gridsize: int) -> Groups:
    """One group per position: the anchor and its C − 1 nearest neighbours (deterministic)."""
    c = group_size(gridsize)
    n = int(np.asarray(ycoords).shape[0])
    if n < c:
        raise ValueError(f"a group of gridsize {gridsize} needs {c} positions; got {n}")
    if c == 1:
        return _singletons(n)
    indices = np.concatenate([np.arange(n)[:, None], nearest_neighbours(ycoords, xcoords, c - 1)], axis=1)
    return Groups(indices, _offsets_from_centroid(ycoords, xcoords, indices))
