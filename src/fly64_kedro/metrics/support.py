"""The support of a cell: the object pixels some method could know.

A pixel is in the support when the probe intensity summed over the view's kept positions,
``I(r) = Σ_j |P(r − r_j)|²``, exceeds ``threshold · max_r I(r)``. It is computed from the
view's own positions and its known probe (measured quantities), never from the truth, and it
is the same for every arm of a (dose, view, split) cell. Everything a score credits is
measured on it; outside it no method has information.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Support:
    """The support of one view on the object grid.

    ``region_yx`` (y0, y1, x0, x1) is the end-exclusive object-pixel bounding box of the
    support; ``mask`` (y1 − y0, x1 − x0) bool marks the support pixels inside it;
    ``threshold`` is the fraction of the summed intensity's maximum that defines it.
    """

    region_yx: tuple[int, int, int, int]
    mask: np.ndarray
    threshold: float

    def mask_over(self, region_yx: tuple[int, int, int, int]) -> np.ndarray:
        """The support mask over another object-pixel box (False outside this support's box)."""
        y0, y1, x0, x1 = region_yx
        sy0, sy1, sx0, sx1 = self.region_yx
        mask = np.zeros((y1 - y0, x1 - x0), dtype=bool)
        top, bottom, left, right = max(y0, sy0), min(y1, sy1), max(x0, sx0), min(x1, sx1)
        if top < bottom and left < right:
            mask[top - y0:bottom - y0, left - x0:right - x0] = self.mask[top - sy0:bottom - sy0, left - sx0:right - sx0]
        return mask


def summed_probe_intensity(probe: np.ndarray, ycoords: np.ndarray, xcoords: np.ndarray,
                           object_shape: tuple[int, int]) -> np.ndarray:
    """``Σ_j |P(r − r_j)|²`` (H, W) float64 on the object grid, for patch centres (n,) px.

    A patch of side N centred on position (y, x) covers rows round(y) − N/2 … round(y) + N/2 − 1
    (the simulation's convention); parts beyond the object are dropped.
    """
    intensity = np.abs(np.asarray(probe)) ** 2
    size = intensity.shape[0]
    total = np.zeros(object_shape, dtype=np.float64)
    tops = np.rint(np.asarray(ycoords)).astype(np.int64) - size // 2
    lefts = np.rint(np.asarray(xcoords)).astype(np.int64) - size // 2
    for top, left in zip(tops, lefts):
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + size, object_shape[0]), min(left + size, object_shape[1])
        if y0 < y1 and x0 < x1:
            total[y0:y1, x0:x1] += intensity[y0 - top:y1 - top, x0 - left:x1 - left]
    return total


def view_support(probe: np.ndarray, ycoords: np.ndarray, xcoords: np.ndarray, object_shape: tuple[int, int],
                 threshold: float) -> Support:
    """The support of a view: pixels where the summed probe intensity exceeds ``threshold`` of its maximum.

    ``probe`` (N, N) complex, positions (n,) object pixels, ``threshold`` in (0, 1).
    Raises ValueError when no position puts light on the object.
    """
    intensity = summed_probe_intensity(probe, ycoords, xcoords, object_shape)
    peak = intensity.max(initial=0.0)
    if not peak > 0:
        raise ValueError("no probe intensity reaches the object at these positions (empty support)")
    inside = intensity > threshold * peak
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    region = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
    return Support(region, inside[region[0]:region[1], region[2]:region[3]], float(threshold))
