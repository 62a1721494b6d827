"""Object-canvas geometry shared by every reconstruction method and the comparison."""

from __future__ import annotations

import numpy as np


def canvas_for_positions(
    ycoords: np.ndarray, xcoords: np.ndarray, patch_size: int, margin_px: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """Canvas covering every patch of the positions plus a margin.

    Returns ``origin_yx`` (2,) float64 — the ground-truth object pixel of canvas pixel
    (0, 0), so canvas pixel (i, j) is object pixel (i + oy, j + ox) — and the canvas shape
    (H, W), both sides even (pty-chi's centre convention needs that).
    """
    half = patch_size // 2
    y0 = int(np.floor(ycoords.min())) - half - margin_px
    x0 = int(np.floor(xcoords.min())) - half - margin_px
    y1 = int(np.ceil(ycoords.max())) + half + margin_px
    x1 = int(np.ceil(xcoords.max())) + half + margin_px
    height, width = y1 - y0, x1 - x0
    height += height % 2
    width += width % 2
    return np.array([y0, x0], dtype=np.float64), (height, width)


def positions_in_canvas(
    ycoords: np.ndarray, xcoords: np.ndarray, origin_yx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Object-pixel positions expressed in canvas pixels."""
    return ycoords - origin_yx[0], xcoords - origin_yx[1]
