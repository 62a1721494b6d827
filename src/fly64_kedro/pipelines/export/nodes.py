"""Export nodes: every arm of one (dose, view, split) cell as a ptychodus product payload.

Units: the study is in object pixels; a product is in metres. With ``s = export.pixel_size_m``
a study object pixel (y, x) is at (y·s, x·s) m — the study object's pixel (0, 0) at the
origin, one frame for every cell and arm, so that products of one study overlay. An arm's
object lies on its own canvas: canvas pixel (i, j) is study object pixel
(i + origin_y, j + origin_x); ptychodus places array pixel (i, j) at
``center + s·((i, j) − ((H − 1)/2, (W − 1)/2))``, so the centre written is
``s·(origin + ((H − 1)/2, (W − 1)/2))``. A scan position (``ycoords``, ``xcoords``, the object
pixel the probe's centre pixel N/2 sits on) is written as ``s·(ycoords, xcoords)``; ptychodus
maps it back to canvas pixel ``(ycoords, xcoords) − origin``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from fly64_kedro.contracts import ObjectEstimate, ScanView
from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.export import ExportParams
from fly64_kedro.parameters.study import Cell
from fly64_kedro.provenance import LOADED_FROM_KEY, add_stage

logger = logging.getLogger(__name__)


def object_center_m(origin_yx: np.ndarray, shape: tuple[int, int], pixel_size_m: float) -> tuple[float, float]:
    """(y, x) in metres of the centre ptychodus gives an (H, W) array whose pixel (0, 0) is study pixel
    ``origin_yx`` (ptychodus centres pixel (H − 1)/2, (W − 1)/2)."""
    height, width = shape
    return (float((origin_yx[0] + (height - 1) / 2) * pixel_size_m),
            float((origin_yx[1] + (width - 1) / 2) * pixel_size_m))


def positions_m(ycoords: np.ndarray, xcoords: np.ndarray, pixel_size_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Scan positions (y, x) in metres from study object pixels."""
    return (np.asarray(ycoords, np.float64) * pixel_size_m, np.asarray(xcoords, np.float64) * pixel_size_m)


def _comments(cell: Cell, arm: str, description: str, view_text: str, run_id: str | None,
              origin: np.ndarray, export: ExportParams, probe_text: str) -> str:
    return (
        f"fly64_kedro synthetic dose/overlap study. Cell {cell}: dose {cell.dose:g} photons per pattern, {view_text}. "
        f"Arm {arm}: {description}. Reconstruction run {run_id or 'unknown'}. "
        f"Object: the arm's reconstruction on its canvas, array pixel (0, 0) = study object pixel "
        f"(y {origin[0]:g}, x {origin[1]:g}); pixel size {export.pixel_size_m:g} m (export.pixel_size_m), positions "
        f"= study object pixels x pixel size. Probe: {probe_text} in the study's scaling; probe_photon_count = "
        f"the dose. Energy and detector distance are nominal "
        f"(export parameters); the diffraction data were simulated in pixels."
    )


def _product(cell: Cell, arm: str, estimate: ObjectEstimate, scan_view: ScanView, export: ExportParams,
             study: StudyDesign, view_text: str, description: str) -> dict[str, Any]:
    """The flat product payload (``fly64_kedro.datasets.ptychodus_product``) of one arm."""
    refined = estimate.probe is not None
    probe = estimate.probe if refined else scan_view.probe
    origin = np.asarray(estimate.canvas_origin_yx, np.float64)
    size = export.pixel_size_m
    center_y, center_x = object_center_m(origin, estimate.object.shape, size)
    pos_y, pos_x = positions_m(scan_view.ycoords, scan_view.xcoords, size)
    losses = np.zeros(0) if estimate.loss_history is None else np.asarray(estimate.loss_history, np.float64).ravel()
    run_id = (estimate.metadata.get("lineage") or {}).get("run_id")
    probe_text = f"the known probe as refined by {arm}" if refined else "the view's known probe"
    fields = {"job": str(cell), "arm": arm, "object_dataset": cell.dataset(f"{arm}_object"), "pixel_size_m": size,
              "canvas_origin_yx": origin.tolist(), "object_center_m": {"y": center_y, "x": center_x},
              "reconstruction_run_id": run_id, "probe": probe_text,
              "units": "metres = study object pixels x pixel_size_m"}
    return {
        "name": f"{cell}.{arm}",
        "comments": _comments(cell, arm, description, view_text, run_id, origin, export, probe_text),
        "detector_object_distance_m": export.detector_distance_m(study.patch_size),
        "photon_energy_eV": export.photon_energy_eV,
        "probe_photon_count": float(cell.dose),
        "far_field": True,
        "object": estimate.object.astype(np.complex64)[np.newaxis],
        "object_pixel_width_m": size, "object_pixel_height_m": size,
        "object_center_x_m": center_x, "object_center_y_m": center_y,
        "object_layer_spacing_m": np.zeros(0),
        "probe": np.asarray(probe, np.complex64)[np.newaxis, np.newaxis],
        "probe_pixel_width_m": size, "probe_pixel_height_m": size,
        "probe_position_indexes": scan_view.scan_index,
        "probe_position_x_m": pos_x, "probe_position_y_m": pos_y,
        "loss_epochs": np.arange(losses.size, dtype=np.int64), "loss_values": losses,
        "_metadata": add_stage(estimate.metadata, "ptychodus_export", fields),
    }


def _view_text(study: StudyDesign, cell: Cell) -> str:
    spec = study.views[cell.view]
    spacing = ("all positions of the split" if spec.overlap_fraction is None else
               f"overlap {spec.overlap_fraction:g}, positions at least {study.spacing_threshold(cell.view):g} px apart")
    return f"view {cell.view} ({spacing}, gridsize {spec.gridsize}), split {cell.split}"


def export_cell(
    scan_view: ScanView,
    export: ExportParams,
    study: StudyDesign,
    *,
    cell: Cell,
    descriptions: dict[str, str],
    **arms: ObjectEstimate,
) -> dict[str, Any]:
    """Every arm of one cell as a ptychodus product (``PtychodusExportDataset`` payload).

    ``arms`` maps method name → its ``ObjectEstimate`` (the method registry's arms of the
    cell), ``descriptions`` method name → what it is. Returns ``arm → product`` for each arm
    with a reconstruction, and ``arm → {status, reason}`` for a skipped or failed arm (no
    product file is written for it), plus ``_metadata`` (the cell, the scale, which input
    versions were read). Each product holds the arm's object on its canvas (one layer), the
    probe it used (the view's known probe, or the probe an engine refined), the view's scan
    positions and the metadata ptychodus stores: name ``<cell>.<arm>``, comments naming the
    cell, arm and run.
    """
    view_text = _view_text(study, cell)
    payload: dict[str, Any] = {}
    for arm, estimate in arms.items():
        if not estimate.ok:
            logger.warning("export %s: arm %s is %s, no product (%s)", cell, arm, estimate.status, estimate.reason)
            payload[arm] = {"status": estimate.status, "reason": estimate.reason}
            continue
        payload[arm] = _product(cell, arm, estimate, scan_view, export, study, view_text, descriptions[arm])
    inputs = {"scan_view": scan_view.metadata, **{arm: estimate.metadata for arm, estimate in arms.items()}}
    payload["_metadata"] = add_stage(None, "ptychodus_export", {
        "job": str(cell), "dose": cell.dose, "view": cell.view, "split": cell.split,
        "pixel_size_m": export.pixel_size_m, "photon_energy_eV": export.photon_energy_eV,
        "detector_object_distance_m": export.detector_distance_m(study.patch_size),
        "units": "metres = study object pixels x pixel_size_m; study object pixel (0, 0) at (0, 0) m",
        "arms": {arm: "ok" if "object" in entry else entry["status"] for arm, entry in payload.items()},
        "inputs": {name: metadata.get(LOADED_FROM_KEY) for name, metadata in inputs.items()},
    })
    return payload
