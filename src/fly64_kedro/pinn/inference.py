"""Inference: predict every group's object patches and stitch their centres into one canvas.

The canvas is the one every method of the study uses (``physics.geometry``): canvas pixel
(i, j) is object pixel (i + oy, j + ox) with ``canvas_origin_yx = (oy, ox)``, so the
comparison maps the network's object exactly as it maps LSQML's.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from fly64_kedro.physics.geometry import positions_in_canvas
from fly64_kedro.pinn.grouping import Groups, inference_groups
from fly64_kedro.pinn.network import FLOAT, PtychoPINN
from fly64_kedro.pinn.physics import pixel_indices, scatter_mean


def crop_size(patch_size: int, crop_fraction: float) -> int:
    """Even side (px) of the central region kept from each patch, at least 2."""
    return max(2, 2 * round(crop_fraction * patch_size / 2))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def predict_patches(
    model: PtychoPINN, counts: np.ndarray, groups: Groups, crop: int, batch_size: int
) -> torch.Tensor:
    """Central ``crop``×``crop`` regions (G·C, crop, crop) complex64 of every predicted patch, on the model's device.

    Row g·C + c is member c of group g, i.e. position ``groups.indices[g, c]``.
    """
    device = model.probe.device
    amplitudes = torch.as_tensor(counts, dtype=FLOAT).to(device).sqrt()
    indices = torch.as_tensor(groups.indices, dtype=torch.int64).to(device)
    low = (counts.shape[-1] - crop) // 2
    chunks = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(groups), batch_size):
            patches = model.object_patches(amplitudes[indices[start:start + batch_size]])
            chunks.append(patches[..., low:low + crop, low:low + crop].reshape(-1, crop, crop))
    return torch.cat(chunks)


UNCOVERED_FILL = np.complex64(1.0)
"""Value of canvas pixels no patch reaches: LSQML's flat starting object."""


def stitch(
    patches: torch.Tensor,
    ycoords: np.ndarray,
    xcoords: np.ndarray,
    origin_yx: np.ndarray,
    canvas_shape: tuple[int, int],
    epsilon: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Average patches (P, c, c) centred on object positions (P,) into a canvas.

    Returns (object (H, W) complex64, coverage (H, W) float32 = patches averaged at each
    pixel). Where no patch reaches (coverage 0) the object is ``UNCOVERED_FILL`` = 1 + 0j,
    the flat object LSQML starts from, so both methods leave unscanned pixels alike.
    """
    height, width = canvas_shape
    crop = patches.shape[-1]
    canvas_y, canvas_x = positions_in_canvas(ycoords, xcoords, origin_yx)
    device = patches.device
    top = torch.as_tensor(np.rint(canvas_y).astype(np.int64) - crop // 2).to(device)
    left = torch.as_tensor(np.rint(canvas_x).astype(np.int64) - crop // 2).to(device)
    index = pixel_indices(top[None], left[None], crop, width)
    canvas, weight = scatter_mean(patches[None], index, height * width, epsilon)
    obj = canvas.reshape(height, width).cpu().numpy().astype(np.complex64)
    coverage = weight.reshape(height, width).cpu().numpy().astype(np.float32)
    obj[coverage == 0] = UNCOVERED_FILL
    return obj, coverage


def reconstruct(
    model: PtychoPINN,
    counts: np.ndarray,
    ycoords: np.ndarray,
    xcoords: np.ndarray,
    origin_yx: np.ndarray,
    canvas_shape: tuple[int, int],
    crop_fraction: float,
    batch_size: int,
) -> dict[str, Any]:
    """Stitched object, on the canvas ``(origin_yx, canvas_shape)``, of a scan's photon counts (n, N, N) at positions (n,).

    Every position anchors one group (its C − 1 nearest neighbours complete it); every
    member's prediction is stitched, so a position's pixels average about C predictions.
    Returns ``object``, ``coverage``, ``n_groups``, ``crop_px`` and the seconds spent
    predicting and stitching.
    """
    patch_size = counts.shape[-1]
    groups = inference_groups(ycoords, xcoords, model.config.gridsize)
    crop = crop_size(patch_size, crop_fraction)
    device = model.probe.device
    _synchronize(device)
    started = time.perf_counter()
    patches = predict_patches(model, counts, groups, crop, batch_size)
    _synchronize(device)
    predicted = time.perf_counter()
    members = groups.indices.ravel()
    obj, coverage = stitch(patches, ycoords[members], xcoords[members], origin_yx, canvas_shape,
                           model.config.merge_epsilon)
    stitched = time.perf_counter()
    return {
        "object": obj,
        "coverage": coverage,
        "n_groups": len(groups),
        "crop_px": crop,
        "predict_seconds": predicted - started,
        "stitch_seconds": stitched - predicted,
    }
