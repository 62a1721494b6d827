"""Inference: predict every group's object patches as the physics saw them and stitch them into one canvas.

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
from fly64_kedro.pinn.physics import pixel_indices, probe_weight, scatter_mean


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def predict_patches(model: PtychoPINN, counts: np.ndarray, groups: Groups, batch_size: int) -> torch.Tensor:
    """The patches the physics saw, (G·C, N, N) complex64 on the model's device: every group member's
    prediction, merged over its group as in training (gridsize > 1).

    Row g·C + c is member c of group g, i.e. position ``groups.indices[g, c]``.
    """
    device = model.probe.device
    amplitudes = torch.as_tensor(counts, dtype=FLOAT).to(device).sqrt()
    indices = torch.as_tensor(groups.indices, dtype=torch.int64).to(device)
    offsets = torch.as_tensor(groups.offsets, dtype=torch.int64).to(device)
    chunks = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(groups), batch_size):
            stop = start + batch_size
            patches = model.constrained_patches(amplitudes[indices[start:stop]], offsets[start:stop])
            chunks.append(patches.reshape(-1, *patches.shape[-2:]))
    return torch.cat(chunks)


UNCOVERED_FILL = np.complex64(1.0)
"""Value of canvas pixels no probe lit: LSQML's flat starting object."""


def stitch(
    patches: torch.Tensor,
    ycoords: np.ndarray,
    xcoords: np.ndarray,
    origin_yx: np.ndarray,
    canvas_shape: tuple[int, int],
    weight: torch.Tensor,
    min_weight: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Average patches (P, N, N) centred on object positions (P,) into a canvas, weighted by ``weight`` (N, N).

    With the probe's intensity as weight every pixel is the average of the predictions that
    the measurements constrained there, each as much as its probe lit it (no seams at crop
    edges). Returns (object (H, W) complex64, coverage (H, W) float32 = summed weight).
    Where the coverage is below ``min_weight`` (a fraction of one probe's peak) the object
    is ``UNCOVERED_FILL`` = 1 + 0j, the flat object LSQML starts from.
    """
    height, width = canvas_shape
    size = patches.shape[-1]
    canvas_y, canvas_x = positions_in_canvas(ycoords, xcoords, origin_yx)
    device = patches.device
    top = torch.as_tensor(np.rint(canvas_y).astype(np.int64) - size // 2).to(device)
    left = torch.as_tensor(np.rint(canvas_x).astype(np.int64) - size // 2).to(device)
    index = pixel_indices(top[None], left[None], size, width)
    canvas, total = scatter_mean(patches[None], index, height * width, min_weight, weight)
    obj = canvas.reshape(height, width).cpu().numpy().astype(np.complex64)
    coverage = total.reshape(height, width).cpu().numpy().astype(np.float32)
    obj[coverage < min_weight] = UNCOVERED_FILL
    return obj, coverage


def reconstruct(
    model: PtychoPINN,
    counts: np.ndarray,
    ycoords: np.ndarray,
    xcoords: np.ndarray,
    origin_yx: np.ndarray,
    canvas_shape: tuple[int, int],
    min_weight: float,
    batch_size: int,
) -> dict[str, Any]:
    """Stitched object, on the canvas ``(origin_yx, canvas_shape)``, of a scan's photon counts (n, N, N) at positions (n,).

    Every position anchors one group (its C − 1 nearest neighbours complete it); every
    member's merged prediction is stitched, weighted by the probe's intensity, so a
    position's pixels average about C predictions. Returns ``object``, ``coverage``,
    ``n_groups`` and the seconds spent predicting and stitching.
    """
    groups = inference_groups(ycoords, xcoords, model.config.gridsize)
    device = model.probe.device
    _synchronize(device)
    started = time.perf_counter()
    patches = predict_patches(model, counts, groups, batch_size)
    _synchronize(device)
    predicted = time.perf_counter()
    members = groups.indices.ravel()
    obj, coverage = stitch(patches, ycoords[members], xcoords[members], origin_yx, canvas_shape,
                           probe_weight(model.probe), min_weight)
    stitched = time.perf_counter()
    return {
        "object": obj,
        "coverage": coverage,
        "n_groups": len(groups),
        "predict_seconds": predicted - started,
        "stitch_seconds": stitched - predicted,
    }
