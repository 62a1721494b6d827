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

from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.export import ExportParams
from fly64_kedro.parameters.study import dose_namespace
from fly64_kedro.provenance import LOADED_FROM_KEY, add_stage
from fly64_kedro.validation import InputDataError, require_complex_2d, require_field

logger = logging.getLogger(__name__)

ARMS = ("pinn", "pinn_gs1", "lsqml")
"""Arms of a cell, in the order of the study table (``pinn_gs1`` only on views of gridsize > 1)."""


def object_center_m(origin_yx: np.ndarray, shape: tuple[int, int], pixel_size_m: float) -> tuple[float, float]:
    """(y, x) in metres of the centre ptychodus gives an (H, W) array whose pixel (0, 0) is study pixel
    ``origin_yx`` (ptychodus centres pixel (H − 1)/2, (W − 1)/2)."""
    height, width = shape
    return (float((origin_yx[0] + (height - 1) / 2) * pixel_size_m),
            float((origin_yx[1] + (width - 1) / 2) * pixel_size_m))


def positions_m(ycoords: np.ndarray, xcoords: np.ndarray, pixel_size_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Scan positions (y, x) in metres from study object pixels."""
    return (np.asarray(ycoords, np.float64) * pixel_size_m, np.asarray(xcoords, np.float64) * pixel_size_m)


def _scan(scan_view: dict[str, Any], dataset: str, patch_size: int) -> dict[str, np.ndarray]:
    """The view's positions and known probe, checked."""
    ycoords = require_field(scan_view, dataset, "ycoords").astype(np.float64)
    xcoords = require_field(scan_view, dataset, "xcoords").astype(np.float64)
    index = require_field(scan_view, dataset, "scan_index")
    if not (ycoords.ndim == 1 and ycoords.shape == xcoords.shape == index.shape):
        raise InputDataError(dataset, "ycoords, xcoords, scan_index", "three (n,) arrays of one length",
                             f"shapes {ycoords.shape}, {xcoords.shape}, {index.shape}")
    if not (np.isfinite(ycoords).all() and np.isfinite(xcoords).all()):
        raise InputDataError(dataset, "ycoords, xcoords", "finite positions", "NaN/inf")
    probe = require_complex_2d(scan_view, dataset, "probeGuess")
    if probe.shape != (patch_size, patch_size):
        raise InputDataError(dataset, "probeGuess", f"shape ({patch_size}, {patch_size}) (patch_size N)",
                             f"shape {probe.shape}")
    return {"ycoords": ycoords, "xcoords": xcoords, "scan_index": index.astype(np.int64), "probe": probe}


def _arm_state(payload: dict[str, Any], dataset: str) -> tuple[str, str | None]:
    """(status, reason) of an arm's object dataset; 'ok' only with a non-empty object."""
    metadata = payload.get("_metadata") or {}
    status, reason = metadata.get("status", "ok"), metadata.get("reason")
    if status == "ok" and np.size(require_field(payload, dataset, "object")) == 0:
        return "failed", "the object dataset holds an empty (0, 0) object although its status is 'ok'"
    return status, reason


def _comments(job: str, arm: str, description: str, view_text: str, dose: float, run_id: str | None,
              origin: np.ndarray, export: ExportParams, probe_text: str) -> str:
    return (
        f"fly64_kedro synthetic dose/overlap study. Cell {job}: dose {dose:g} photons per pattern, {view_text}. "
        f"Arm {arm}: {description}. Reconstruction run {run_id or 'unknown'}. "
        f"Object: the arm's reconstruction on its canvas, array pixel (0, 0) = study object pixel "
        f"(y {origin[0]:g}, x {origin[1]:g}); pixel size {export.pixel_size_m:g} m (export.pixel_size_m), positions "
        f"= study object pixels x pixel size. Probe: {probe_text} in the study's scaling; probe_photon_count = "
        f"the dose. Energy and detector distance are nominal "
        f"(export parameters); the diffraction data were simulated in pixels."
    )


def _product(job: str, arm: str, arm_payload: dict[str, Any], dataset: str, scan: dict[str, np.ndarray],
             export: ExportParams, study: StudyDesign, dose: float, view_text: str, description: str) -> dict[str, Any]:
    """The flat product payload (``fly64_kedro.datasets.ptychodus_product``) of one arm."""
    refined = arm == "lsqml" and "probe" in arm_payload
    probe = require_complex_2d(arm_payload, dataset, "probe") if refined else scan["probe"]
    obj = require_complex_2d(arm_payload, dataset, "object").astype(np.complex64)
    origin = require_field(arm_payload, dataset, "canvas_origin_yx").astype(np.float64)
    if origin.shape != (2,) or not np.isfinite(origin).all():
        raise InputDataError(dataset, "canvas_origin_yx", "(2,) finite object pixel of canvas pixel (0, 0)",
                             repr(origin.tolist()))
    size = export.pixel_size_m
    center_y, center_x = object_center_m(origin, obj.shape, size)
    pos_y, pos_x = positions_m(scan["ycoords"], scan["xcoords"], size)
    losses = np.asarray(arm_payload.get("loss_history", np.zeros(0)), np.float64).reshape(-1)
    metadata = arm_payload.get("_metadata") or {}
    run_id = (metadata.get("lineage") or {}).get("run_id")
    fields = {"job": job, "arm": arm, "object_dataset": dataset, "pixel_size_m": size,
              "canvas_origin_yx": origin.tolist(), "object_center_m": {"y": center_y, "x": center_x},
              "reconstruction_run_id": run_id, "probe": "refined by LSQML" if refined else "the view's known probe",
              "units": "metres = study object pixels x pixel_size_m"}
    return {
        "name": f"{job}.{arm}",
        "comments": _comments(job, arm, description, view_text, dose, run_id, origin, export,
                              "the known probe as refined by LSQML" if refined else "the view's known probe"),
        "detector_object_distance_m": export.detector_distance_m(study.patch_size),
        "photon_energy_eV": export.photon_energy_eV,
        "probe_photon_count": float(dose),
        "far_field": True,
        "object": obj[np.newaxis],
        "object_pixel_width_m": size, "object_pixel_height_m": size,
        "object_center_x_m": center_x, "object_center_y_m": center_y,
        "object_layer_spacing_m": np.zeros(0),
        "probe": probe.astype(np.complex64)[np.newaxis, np.newaxis],
        "probe_pixel_width_m": size, "probe_pixel_height_m": size,
        "probe_position_indexes": scan["scan_index"],
        "probe_position_x_m": pos_x, "probe_position_y_m": pos_y,
        "loss_epochs": np.arange(losses.size, dtype=np.int64), "loss_values": losses,
        "_metadata": add_stage(metadata, "ptychodus_export", fields),
    }


def _descriptions(study: StudyDesign, view: str, gs1_view: str | None, refined_probe: bool) -> dict[str, str]:
    gridsize = study.views[view].gridsize
    return {
        "pinn": f"PtychoPINN-style network of this view (gridsize {gridsize}), trained on the train split",
        "pinn_gs1": f"the gridsize-1 network of view {gs1_view} on this view's positions",
        "lsqml": "pty-chi LSQML from a flat object with the known probe"
                 + (", probe refined" if refined_probe else ""),
    }


def export_cell(
    scan_view: dict[str, Any],
    pinn: dict[str, Any],
    lsqml: dict[str, Any],
    export: ExportParams,
    study: StudyDesign,
    pinn_gs1: dict[str, Any] | None = None,
    *,
    dose: float,
    view: str,
    split: str,
    gs1_view: str | None = None,
) -> dict[str, Any]:
    """Every arm of one cell as a ptychodus product (``PtychodusExportDataset`` payload).

    Returns ``arm → product`` for each arm with a reconstruction, and ``arm → {status,
    reason}`` for a skipped or failed arm (no product file is written for it), plus
    ``_metadata`` (the cell, the scale, which input versions were read). Each product holds
    the arm's object on its canvas (one layer), the probe it used (the view's known probe;
    LSQML's refined probe when it refined it), the view's scan positions and the metadata
    ptychodus stores: name ``<cell>.<arm>``, comments naming the cell, arm and run.
    """
    job = f"{dose_namespace(dose)}.{view}.{split}"
    scan = _scan(scan_view, f"{job}.scan_view", study.patch_size)
    spec = study.views[view]
    view_text = (f"view {view} (all positions of the split" if spec.overlap_fraction is None
                 else f"view {view} (overlap {spec.overlap_fraction:g}, positions at least "
                      f"{study.spacing_threshold(view):g} px apart") + f", gridsize {spec.gridsize}), split {split}"
    arms = {"pinn": (pinn, f"{job}.pinn_object"), "lsqml": (lsqml, f"{job}.lsqml_object")}
    if pinn_gs1 is not None:
        arms["pinn_gs1"] = (pinn_gs1, f"{job}.pinn_gs1_object")
    descriptions = _descriptions(study, view, gs1_view, "probe" in lsqml)
    payload: dict[str, Any] = {}
    for arm in (arm for arm in ARMS if arm in arms):
        arm_payload, dataset = arms[arm]
        status, reason = _arm_state(arm_payload, dataset)
        if status != "ok":
            logger.warning("export %s: arm %s is %s, no product (%s)", job, arm, status, reason)
            payload[arm] = {"status": status, "reason": reason}
            continue
        payload[arm] = _product(job, arm, arm_payload, dataset, scan, export, study, dose, view_text,
                                descriptions[arm])
    inputs = {"scan_view": scan_view, **{arm: value for arm, (value, _) in arms.items()}}
    payload["_metadata"] = add_stage(None, "ptychodus_export", {
        "job": job, "dose": dose, "view": view, "split": split,
        "pixel_size_m": export.pixel_size_m, "photon_energy_eV": export.photon_energy_eV,
        "detector_object_distance_m": export.detector_distance_m(study.patch_size),
        "units": "metres = study object pixels x pixel_size_m; study object pixel (0, 0) at (0, 0) m",
        "arms": {arm: "ok" if "object" in entry else entry["status"] for arm, entry in payload.items()},
        "inputs": {name: (value.get("_metadata") or {}).get(LOADED_FROM_KEY) for name, value in inputs.items()},
    })
    return payload
