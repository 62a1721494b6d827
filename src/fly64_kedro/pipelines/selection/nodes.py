"""Selection nodes: scan views by minimum spacing, their telemetry, the report and the figure."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.collections import EllipseCollection
from matplotlib.figure import Figure

from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.selection import SelectionParams
from fly64_kedro.parameters.study import SPLITS, dose_namespace
from fly64_kedro.physics.selection import SpacingSelection, measured_overlap, select_min_spacing
from fly64_kedro.provenance import LOADED_FROM_KEY, add_stage
from fly64_kedro.validation import InputDataError, require_complex_2d, require_field

logger = logging.getLogger(__name__)

# Columns of `selection_table`, in order (one row per dose × view × split).
TABLE_COLUMNS = (
    "dose", "view", "split", "spacing_threshold", "overlap_fraction", "selection_strategy",
    "n_input_positions", "n_accepted", "n_rejected", "acceptance_rate", "direct_acceptance_rate",
    "geometry_acceptance_bound", "effective_min_acceptance", "below_floor", "probe_diameter_px",
    "measured_overlap", "gridsize", "sufficient_lsqml", "sufficient_pinn",
)


def _require_measurements(measurements: dict[str, Any], dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) of a measurements payload: 1-D, equal length ≥ 1, finite, one finite non-negative pattern each."""
    y = require_field(measurements, dataset, "ycoords")
    x = require_field(measurements, dataset, "xcoords")
    for field, array in (("ycoords", y), ("xcoords", x)):
        if array.ndim != 1 or array.size == 0:
            raise InputDataError(dataset, field, "a non-empty 1-D array of positions (px)", f"shape {array.shape}")
        if not np.issubdtype(array.dtype, np.number):
            raise InputDataError(dataset, field, "numeric coordinates (px)", f"dtype {array.dtype}")
        if not np.isfinite(array).all():
            raise InputDataError(dataset, field, "finite coordinates (px)",
                                 f"{int((~np.isfinite(array)).sum())} NaN/inf value(s)")
    if x.shape != y.shape:
        raise InputDataError(dataset, "xcoords", f"the length of ycoords ({y.size})", f"length {x.size}")
    diffraction = require_field(measurements, dataset, "diffraction")
    if diffraction.ndim != 3 or diffraction.shape[0] != y.size:
        raise InputDataError(dataset, "diffraction", f"shape ({y.size}, N, N): one pattern per position",
                             f"shape {diffraction.shape}")
    n_bad = int(np.count_nonzero(~np.isfinite(diffraction)))
    if n_bad:
        raise InputDataError(dataset, "diffraction", "finite amplitudes sqrt(counts)", f"{n_bad} NaN/inf value(s)")
    n_negative = int(np.count_nonzero(diffraction < 0))
    if n_negative:
        raise InputDataError(dataset, "diffraction", "amplitudes sqrt(counts) ≥ 0",
                             f"{n_negative} negative value(s) (minimum {float(diffraction.min()):.4g})")
    return y.astype(np.float64), x.astype(np.float64)


def _require_probe_diameter(probe: dict[str, Any]) -> float:
    """The measured probe diameter (px) from the ``probe`` dataset's metadata."""
    diameter = (probe.get("_metadata") or {}).get("probe_diameter_px")
    if not isinstance(diameter, (int, float)) or not (np.isfinite(diameter) and diameter > 0):
        raise InputDataError("probe", "_metadata.probe_diameter_px", "a positive number of px (measured by simulation)",
                             repr(diameter))
    return float(diameter)


def _kept_payload(measurements: dict[str, Any], keep: np.ndarray) -> dict[str, Any]:
    """Every per-position array (leading axis n) restricted to the kept positions; the probe and
    the 0-d ``intensity_scale`` are copied whole."""
    def restrict(key: str, value: np.ndarray) -> np.ndarray:
        per_position = key != "probeGuess" and value.ndim > 0 and value.shape[0] == keep.size
        return value[keep] if per_position else value.copy()

    return {key: restrict(key, np.asarray(value)) for key, value in measurements.items() if key != "_metadata"}


def _spaced_selections(points: dict[str, tuple[np.ndarray, np.ndarray]], spacing: float,
                       selection: SelectionParams) -> tuple[dict[str, SpacingSelection], dict[str, bool]]:
    """One spacing rule for every split of a (dose, view): greedy for all if any split's direct rate is below its floor.

    ``points`` maps split → (y, x) (n,) px. Returns (split → selection, split → whether its
    own direct rate was below its floor).
    """
    rule = {"bound_cap": selection.bound_cap, "bound_factor": selection.bound_factor,
            "minimum": selection.floor_minimum}
    chosen = {split: select_min_spacing(y, x, spacing, **rule) for split, (y, x) in points.items()}
    fell_back = {split: result.strategy == "greedy" for split, result in chosen.items()}
    if any(fell_back.values()):
        chosen = {split: result if result.strategy == "greedy" else
                  select_min_spacing(*points[split], spacing, **rule, strategy="greedy")
                  for split, result in chosen.items()}
    return chosen, fell_back


def _telemetry(chosen: SpacingSelection | None, fell_back: dict[str, bool]) -> dict[str, Any]:
    """The selection fields of one split; ``chosen`` None for a view that keeps every position."""
    if chosen is None:
        return {"selection_strategy": "all", "acceptance_rate": 1.0, "direct_acceptance_rate": None,
                "geometry_acceptance_bound": None, "effective_min_acceptance": None, "below_floor": False,
                "strategy_decision": None}
    return {
        "selection_strategy": chosen.strategy, "acceptance_rate": chosen.acceptance_rate,
        "direct_acceptance_rate": chosen.direct_acceptance_rate,
        "geometry_acceptance_bound": chosen.geometry_acceptance_bound,
        "effective_min_acceptance": chosen.effective_min_acceptance, "below_floor": chosen.below_floor,
        "strategy_decision": {
            "rule": "one strategy per (dose, view) for both splits: greedy when either split's direct "
                    "acceptance rate is below its floor, else direct",
            "direct_below_floor": fell_back,
        },
    }


def select_scan_views(
    train: dict[str, Any],
    test: dict[str, Any],
    probe: dict[str, Any],
    study: StudyDesign,
    selection: SelectionParams,
    *,
    dose: float,
    view: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The scan view of both splits of one (dose, view): the measurements of the kept positions plus telemetry.

    The baseline view (no overlap fraction) keeps every position; the others keep
    positions at least S = (1 − f)·N px apart, by one strategy for both splits (direct,
    or greedy when either split's direct rate falls below its acceptance floor), so a view
    has one density. Arrays are those of each split's measurements restricted to the kept
    positions (``diffraction`` (m, N, N) float32, ``xcoords``/``ycoords``/``scan_index``
    (m,)) with ``probeGuess`` and ``intensity_scale`` unchanged; ``_metadata`` adds the
    telemetry. Returns (train view, test view).
    """
    measurements = dict(zip(SPLITS, (train, test)))
    points = {split: _require_measurements(payload, f"{dose_namespace(dose)}.{split}.measurements")
              for split, payload in measurements.items()}
    spacing = study.spacing_threshold(view)
    if spacing is None:
        chosen: dict[str, SpacingSelection | None] = dict.fromkeys(SPLITS)
        fell_back: dict[str, bool] = {}
    else:
        chosen, fell_back = _spaced_selections(points, spacing, selection)
    diameter = _require_probe_diameter(probe)
    return tuple(_scan_view(measurements[split], points[split], chosen[split], fell_back, diameter, study, selection,
                            dose=dose, view=view, split=split) for split in SPLITS)


def _scan_view(
    measurements: dict[str, Any], points: tuple[np.ndarray, np.ndarray], chosen: SpacingSelection | None,
    fell_back: dict[str, bool], diameter: float, study: StudyDesign, selection: SelectionParams,
    *, dose: float, view: str, split: str,
) -> dict[str, Any]:
    """One split's scan view: the kept positions' measurements and the selection telemetry in ``_metadata``."""
    y, x = points
    keep = np.ones(y.size, dtype=bool) if chosen is None else chosen.keep
    telemetry = _telemetry(chosen, fell_back)
    spacing = study.spacing_threshold(view)
    gridsize = study.views[view].gridsize
    n_accepted = int(keep.sum())
    overlap, neighbours = measured_overlap(y[keep], x[keep], diameter, study.neighbor_count)
    minimum = {"lsqml": selection.lsqml_min_positions, "pinn": gridsize**2}
    fields = {
        "dose": dose,
        "view": view,
        "split": split,
        **telemetry,
        "spacing_threshold": spacing,
        "overlap_fraction": study.views[view].overlap_fraction,
        "selection_rule": None if spacing is None else
            "direct: keep a position whose nearest neighbour is >= S away; greedy (if the direct rate < floor in "
            "either split): walk positions sorted by y then x, keep one >= S from every kept one; S = (1 - f) * N",
        "n_input_positions": int(y.size),
        "n_positions": n_accepted,
        "n_accepted": n_accepted,
        "n_rejected": int(y.size - n_accepted),
        "probe_diameter_px": diameter,
        "measured_overlap": overlap,
        "measured_overlap_neighbors": neighbours,
        "measured_overlap_definition": "mean over kept positions of the lens-area fraction of two discs of the "
                                       "probe diameter, to each of its K nearest kept neighbours",
        "gridsize": gridsize,
        "min_positions": minimum,
        "sufficient_for": {method: n_accepted >= need for method, need in minimum.items()},
    }
    job = f"{dose_namespace(dose)} {view}/{split}"
    if telemetry["below_floor"]:
        logger.warning("%s: acceptance %.4f stays below the floor %.4f even with greedy selection "
                       "(%d of %d positions kept); the view is kept and flagged below_floor",
                       job, telemetry["acceptance_rate"], telemetry["effective_min_acceptance"], n_accepted, y.size)
    short = [method for method, ok in fields["sufficient_for"].items() if not ok]
    if short:
        logger.warning("%s: %d positions are too few for %s (needs %s)", job, n_accepted, ", ".join(short),
                       {m: minimum[m] for m in short})
    logger.info("%s: %s kept %d/%d (S = %s px), measured overlap %s", job, telemetry["selection_strategy"],
                n_accepted, y.size, "—" if spacing is None else f"{spacing:.1f}",
                "—" if overlap is None else f"{overlap:.3f}")
    payload = _kept_payload(measurements, keep)
    payload["_metadata"] = add_stage(measurements.get("_metadata"), "selection", fields)
    return payload


def summarize_selection(*scan_views: dict[str, Any]) -> tuple[dict[str, Any], pd.DataFrame]:
    """The selection report (JSON dict) and table (one row per dose × view × split) from the views' metadata."""
    rows, sources = [], []
    for scan_view in scan_views:
        meta = scan_view["_metadata"]
        row = {column: meta.get(column) for column in TABLE_COLUMNS if column in meta}
        row["sufficient_lsqml"] = meta["sufficient_for"]["lsqml"]
        row["sufficient_pinn"] = meta["sufficient_for"]["pinn"]
        rows.append(row)
        sources.append(meta.get(LOADED_FROM_KEY))
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    report = {
        "rows": [{**row, "source": source} for row, source in zip(rows, sources)],
        "below_floor": [f"{dose_namespace(r['dose'])}.{r['view']}.{r['split']}" for r in rows if r["below_floor"]],
        "insufficient": {
            method: [f"{dose_namespace(r['dose'])}.{r['view']}.{r['split']}" for r in rows if not r[f"sufficient_{method}"]]
            for method in ("lsqml", "pinn")
        },
        "definitions": {
            "spacing_threshold": "S = (1 - f) * N px; null for the baseline view (every position kept)",
            "acceptance_rate": "n_accepted / n_input_positions",
            "geometry_acceptance_bound": "min(bounding-box area / (n * pi * (S/2)^2), bound_cap)",
            "effective_min_acceptance": "max(floor_minimum, bound_factor * geometry_acceptance_bound)",
            "measured_overlap": scan_views[0]["_metadata"]["measured_overlap_definition"] if scan_views else None,
        },
    }
    return report, table


def plot_selection(ground_truth: dict[str, Any], selection: SelectionParams, *scan_views: dict[str, Any]) -> Figure:
    """Kept positions of each view over the object amplitude, with discs of the measured probe diameter.

    ``scan_views`` are the views of one dose (positions do not depend on the dose); each
    view is one panel holding both splits.
    """
    amplitude = np.abs(require_complex_2d(ground_truth, "ground_truth", "objectGuess"))
    views = list(dict.fromkeys(view["_metadata"]["view"] for view in scan_views))
    style = selection.figure
    figure = Figure(figsize=(style.panel_size_in * len(views), style.panel_size_in * 1.25), dpi=style.dpi,
                    constrained_layout=True)
    axes = np.atleast_1d(figure.subplots(1, len(views)))
    colours = {"train": "tab:blue", "test": "tab:orange"}
    for axis, view in zip(axes, views):
        axis.imshow(amplitude, cmap="gray")
        summary = []
        for scan_view in scan_views:
            meta = scan_view["_metadata"]
            if meta["view"] != view:
                continue
            colour = colours.get(meta["split"], "tab:green")
            offsets = np.column_stack([scan_view["xcoords"], scan_view["ycoords"]])
            diameter = meta["probe_diameter_px"]
            axis.add_collection(_discs(offsets, diameter, colour, style.disc_alpha, axis))
            axis.plot(offsets[:, 0], offsets[:, 1], ".", color=colour, markersize=2,
                      label=f"{meta['split']}: {meta['n_accepted']}/{meta['n_input_positions']}")
            overlap = meta["measured_overlap"]
            summary.append(f"{meta['split']}: {meta['selection_strategy']}, measured overlap "
                           + ("—" if overlap is None else f"{overlap:.2f}")
                           + (" (below floor)" if meta["below_floor"] else ""))
        spacing = next(v["_metadata"]["spacing_threshold"] for v in scan_views if v["_metadata"]["view"] == view)
        axis.set_title(f"{view}: S = {'all' if spacing is None else f'{spacing:.1f} px'}\n" + "\n".join(summary),
                       fontsize=8)
        axis.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=7, frameon=False)
        axis.set_axis_off()
    meta = scan_views[0]["_metadata"]
    figure.suptitle(f"{dose_namespace(meta['dose'])}: kept positions (the same at every dose) with discs of the "
                    f"measured probe diameter {meta['probe_diameter_px']:.1f} px", fontsize=9)
    return figure


def _discs(offsets: np.ndarray, diameter: float, colour: str, alpha: float, axis: Any) -> EllipseCollection:
    """Filled discs of ``diameter`` data px centred at ``offsets`` (x, y)."""
    return EllipseCollection(diameter, diameter, 0.0, units="xy", offsets=offsets, offset_transform=axis.transData,
                             facecolors=colour, edgecolors="none", alpha=alpha)
