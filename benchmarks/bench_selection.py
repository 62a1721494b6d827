"""Selection time: the cKDTree rule against the original O(n²) distance-matrix rule, same run.

Positions are uniform over a square at the fly64 scan density (10,304 positions over
≈ 336 × 336 px, the 2×-upsampled real scan; N = 128 so dense S = 38.4 px, sparse S = 102.4 px),
for 10,304 and 100,000 positions. The reference is the original study's algorithm: the full
pairwise distance matrix (pdist + squareform) for the direct rule, then the greedy walk
checking each candidate against every accepted position. At 100,000 positions the n×n
matrix would need 80 GB, so the reference computes the same distances in row blocks
(still O(n²) work). Both must return the same mask; the script checks it.

    OMP_NUM_THREADS=2 python benchmarks/bench_selection.py [--repeats 5] [--sizes 10304 100000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from scipy.spatial.distance import pdist, squareform

from fly64_kedro.physics.selection import (
    acceptance_floor,
    greedy_order,
    select_min_spacing,
)

FLY64_POSITIONS = 10_304
FLY64_SPAN_PX = 336.0
PATCH = 128
VIEWS = {"dense": 0.7, "sparse": 0.2}
FLOOR = {"bound_cap": 0.10, "bound_factor": 0.8, "minimum": 0.0005}
FULL_MATRIX_LIMIT = 20_000  # above this the reference works in row blocks
BLOCK = 512


def positions(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n uniform positions (y, x) at the fly64 scan density."""
    span = FLY64_SPAN_PX * np.sqrt(n / FLY64_POSITIONS)
    rng = np.random.default_rng(seed)
    return rng.uniform(0, span, n), rng.uniform(0, span, n)


def nearest_distance_squared(points: np.ndarray) -> np.ndarray:
    """Squared nearest-neighbour distance of every point: the full matrix, or row blocks of it."""
    if len(points) <= FULL_MATRIX_LIMIT:
        d2 = squareform(pdist(points, "sqeuclidean"))
        np.fill_diagonal(d2, np.inf)
        return d2.min(axis=1)
    nearest = np.empty(len(points))
    y, x = points[:, 0], points[:, 1]
    for start in range(0, len(points), BLOCK):
        stop = min(start + BLOCK, len(points))
        block = (y[start:stop, None] - y) ** 2 + (x[start:stop, None] - x) ** 2
        block[np.arange(stop - start), np.arange(start, stop)] = np.inf
        nearest[start:stop] = block.min(axis=1)
    return nearest


def reference_selection(y: np.ndarray, x: np.ndarray, spacing: float) -> np.ndarray:
    """The original rule with O(n²) distances: direct, else the greedy walk by (y, x)."""
    points = np.column_stack([y, x])
    _, floor = acceptance_floor(points, spacing, **FLOOR)
    direct = nearest_distance_squared(points) >= spacing**2
    if direct.mean() >= floor:
        return direct
    keep = np.zeros(len(points), dtype=bool)
    accepted = np.empty((0, 2))
    for index in greedy_order(points):
        if not len(accepted) or (((accepted - points[index]) ** 2).sum(axis=1) >= spacing**2).all():
            keep[index] = True
            accepted = np.vstack([accepted, points[index]])
    return keep


def timed(function: Callable[[], np.ndarray], repeats: int) -> tuple[float, float, np.ndarray]:
    """Median and best CPU time (s) over ``repeats`` calls, and the last result.

    CPU time of this process, not wall time: on a shared machine other processes stretch
    wall times by a varying factor; both rules run on one thread, so CPU time is their cost.
    """
    times = []
    result = function() if repeats > 1 else None  # an untimed first call when repeating: caches, allocator
    for _ in range(repeats):
        start = time.process_time()
        result = function()
        times.append(time.process_time() - start)
    return statistics.median(times), min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls of the fast rule (median)")
    parser.add_argument("--reference-repeats", type=int, default=3,
                        help="timed calls of the full-matrix reference (the row-block one runs once)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[FLY64_POSITIONS, 100_000])
    args = parser.parse_args()

    print("CPU times in s: median (best) of the repeats; ratio = reference / cKDTree, medians (bests)")
    print(f"{'n':>8} {'view':>6} {'S px':>6} {'rule':>6} {'kept':>5} {'cKDTree s':>17} "
          f"{'O(n²) s':>15} {'ratio':>12} {'reference':>12}")
    fast: dict[tuple[str, int], float] = {}
    for n in args.sizes:
        y, x = positions(n)
        for view, fraction in VIEWS.items():
            spacing = (1 - fraction) * PATCH
            ours_s, ours_best, chosen = timed(lambda: select_min_spacing(y, x, spacing, bound_cap=FLOOR["bound_cap"],
                                                              bound_factor=FLOOR["bound_factor"],
                                                              minimum=FLOOR["minimum"]), args.repeats)
            full_matrix = n <= FULL_MATRIX_LIMIT
            ref_s, ref_best, reference = timed(lambda: reference_selection(y, x, spacing),
                                     args.reference_repeats if full_matrix else 1)
            if not np.array_equal(chosen.keep, reference):
                raise SystemExit(f"mismatch at n={n}, {view}: {chosen.keep.sum()} vs {reference.sum()} kept")
            fast[(view, n)] = ours_s
            kind = "full matrix" if full_matrix else "row blocks"
            print(f"{n:>8} {view:>6} {spacing:>6.1f} {chosen.strategy:>6} {int(chosen.keep.sum()):>5} "
                  f"{ours_s:>8.4f} ({ours_best:.4f}) {ref_s:>7.2f} ({ref_best:5.2f}) "
                  f"{ref_s / ours_s:>4.0f}× ({ref_best / ours_best:>4.0f}×) {kind:>12}", flush=True)
    if len(args.sizes) > 1:
        small, large = min(args.sizes), max(args.sizes)
        for view in VIEWS:
            growth = fast[(view, large)] / fast[(view, small)]
            print(f"scaling {view}: n ×{large / small:.1f} → cKDTree time ×{growth:.1f} "
                  f"(O(n²) would be ×{(large / small) ** 2:.0f})")


if __name__ == "__main__":
    main()
