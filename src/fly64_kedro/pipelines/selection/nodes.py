"""Selection nodes: scan views by minimum spacing, their telemetry, the report and the figure."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.collections import EllipseCollection
from matplotlib.figure import Figure

from fly64_kedro.contracts import (
    GroundTruth,
    Measurements,
    Probe,
    ScanView,
    SelectionTelemetry,
)
from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.selection import SelectionParams
from fly64_kedro.parameters.study import SPLITS, Cell
from fly64_kedro.physics.selection import (
    SpacingSelection,
    measured_overlap,
    select_min_spacing,
)
from fly64_kedro.provenance import LOADED_FROM_KEY, add_stage

logger = logging.getLogger(__name__)

MEASURED_OVERLAP = ("mean over kept positions of the lens-area fraction of two discs of the probe diameter, to "
                    "each of its K nearest kept neighbours")
"""What ``measured_overlap`` means."""

# Columns of `selection_table`, in order (one row per dose × view × split).
TABLE_COLUMNS = (
    "dose", "view", "split", "spacing_threshold", "overlap_fraction", "selection_strategy",
    "n_input_positions", "n_accepted", "n_rejected", "acceptance_rate", "direct_acceptance_rate",
    "geometry_acceptance_bound", "effective_min_acceptance", "below_floor", "probe_diameter_px",
    "measured_overlap", "gridsize", "sufficient_iterative", "sufficient_pinn",
)


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
    train: Measurements,
    test: Measurements,
    probe: Probe,
    study: StudyDesign,
    selection: SelectionParams,
    *,
    cell: Cell,
) -> tuple[ScanView, ScanView]:
    """The scan view of both splits of one (dose, view) cell: the measurements of the kept positions and telemetry.

    The baseline view (no overlap fraction) keeps every position; the others keep
    positions at least S = (1 − f)·N px apart, by one strategy for both splits (direct,
    or greedy when either split's direct rate falls below its acceptance floor), so a view
    has one density. Each view holds its split's patterns (m, N, N) and positions (m,) of
    the kept positions, the probe and intensity scale unchanged, and its ``telemetry``.
    Returns (train view, test view).
    """
    measurements = dict(zip(SPLITS, (train, test)))
    spacing = study.spacing_threshold(cell.view)
    if spacing is None:
        chosen: dict[str, SpacingSelection | None] = dict.fromkeys(SPLITS)
        fell_back: dict[str, bool] = {}
    else:
        points = {split: (data.ycoords, data.xcoords) for split, data in measurements.items()}
        chosen, fell_back = _spaced_selections(points, spacing, selection)
    return tuple(_scan_view(measurements[split], chosen[split], fell_back, probe.diameter_px, study, selection,
                            cell=cell.with_split(split)) for split in SPLITS)


def _scan_view(
    measurements: Measurements, chosen: SpacingSelection | None, fell_back: dict[str, bool], diameter: float,
    study: StudyDesign, selection: SelectionParams, *, cell: Cell,
) -> ScanView:
    """One split's scan view: the kept positions' measurements and the selection telemetry."""
    y, x = measurements.ycoords, measurements.xcoords
    keep = np.ones(y.size, dtype=bool) if chosen is None else chosen.keep
    strategy = _telemetry(chosen, fell_back)
    spacing = study.spacing_threshold(cell.view)
    gridsize = study.views[cell.view].gridsize
    n_accepted = int(keep.sum())
    overlap, neighbours = measured_overlap(y[keep], x[keep], diameter, study.neighbor_count)
    minimum = {"iterative": selection.iterative_min_positions, "pinn": gridsize**2}
    telemetry = SelectionTelemetry(
        dose=cell.dose, view=cell.view, split=cell.split, **strategy, spacing_threshold=spacing,
        overlap_fraction=study.views[cell.view].overlap_fraction, n_input_positions=int(y.size),
        n_accepted=n_accepted, n_rejected=int(y.size - n_accepted), probe_diameter_px=diameter,
        measured_overlap=overlap, measured_overlap_neighbors=neighbours, gridsize=gridsize, min_positions=minimum,
        sufficient_for={method: n_accepted >= need for method, need in minimum.items()},
    )
    if telemetry.below_floor:
        logger.warning("%s: acceptance %.4f stays below the floor %.4f even with greedy selection "
                       "(%d of %d positions kept); the view is kept and flagged below_floor",
                       cell, telemetry.acceptance_rate, telemetry.effective_min_acceptance, n_accepted, y.size)
    short = [method for method, ok in telemetry.sufficient_for.items() if not ok]
    if short:
        logger.warning("%s: %d positions are too few for %s (needs %s)", cell, n_accepted, ", ".join(short),
                       {m: minimum[m] for m in short})
    logger.info("%s: %s kept %d/%d (S = %s px), measured overlap %s", cell, telemetry.selection_strategy,
                n_accepted, y.size, "—" if spacing is None else f"{spacing:.1f}",
                "—" if overlap is None else f"{overlap:.3f}")
    metadata = add_stage(measurements.metadata, "selection", {
        **telemetry.model_dump(mode="json"),
        "n_positions": n_accepted,
        "selection_rule": None if spacing is None else
            "direct: keep a position whose nearest neighbour is >= S away; greedy (if the direct rate < floor in "
            "either split): walk positions sorted by y then x, keep one >= S from every kept one; S = (1 - f) * N",
        "measured_overlap_definition": MEASURED_OVERLAP,
    })
    kept = measurements.subset(keep, metadata)
    return ScanView(kept.diffraction, kept.ycoords, kept.xcoords, kept.scan_index, kept.probe, kept.intensity_scale,
                    metadata, telemetry)


def summarize_selection(*scan_views: ScanView) -> tuple[dict[str, Any], pd.DataFrame]:
    """The selection report (JSON dict) and table (one row per dose × view × split) from the views' telemetry."""
    rows, sources = [], []
    for scan_view in scan_views:
        telemetry = scan_view.telemetry.model_dump(mode="json")
        row = {column: telemetry.get(column) for column in TABLE_COLUMNS if column in telemetry}
        row["sufficient_iterative"] = telemetry["sufficient_for"]["iterative"]
        row["sufficient_pinn"] = telemetry["sufficient_for"]["pinn"]
        rows.append(row)
        sources.append(scan_view.metadata.get(LOADED_FROM_KEY))
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))

    def cells(flagged: Any) -> list[str]:
        return [str(Cell(r["dose"], r["view"], r["split"])) for r in rows if flagged(r)]

    report = {
        "rows": [{**row, "source": source} for row, source in zip(rows, sources)],
        "below_floor": cells(lambda r: r["below_floor"]),
        "insufficient": {method: cells(lambda r, m=method: not r[f"sufficient_{m}"]) for method in ("iterative", "pinn")},
        "definitions": {
            "spacing_threshold": "S = (1 - f) * N px; null for the baseline view (every position kept)",
            "acceptance_rate": "n_accepted / n_input_positions",
            "geometry_acceptance_bound": "min(bounding-box area / (n * pi * (S/2)^2), bound_cap)",
            "effective_min_acceptance": "max(floor_minimum, bound_factor * geometry_acceptance_bound)",
            "measured_overlap": MEASURED_OVERLAP,
        },
    }
    return report, table


def plot_selection(ground_truth: GroundTruth, selection: SelectionParams, *scan_views: ScanView) -> Figure:
    """Kept positions of each view over the object amplitude, with discs of the measured probe diameter.

    ``scan_views`` are the views of one dose (positions do not depend on the dose); each
    view is one panel holding both splits.
    """
    amplitude = np.abs(ground_truth.obj)
    views = list(dict.fromkeys(view.telemetry.view for view in scan_views))
    style = selection.figure
    figure = Figure(figsize=(style.panel_size_in * len(views), style.panel_size_in * 1.25), dpi=style.dpi,
                    constrained_layout=True)
    axes = np.atleast_1d(figure.subplots(1, len(views)))
    colours = {"train": "tab:blue", "test": "tab:orange"}
    for axis, view in zip(axes, views):
        axis.imshow(amplitude, cmap="gray")
        summary = []
        for scan_view in scan_views:
            telemetry = scan_view.telemetry
            if telemetry.view != view:
                continue
            colour = colours.get(telemetry.split, "tab:green")
            offsets = np.column_stack([scan_view.xcoords, scan_view.ycoords])
            axis.add_collection(_discs(offsets, telemetry.probe_diameter_px, colour, style.disc_alpha, axis))
            axis.plot(offsets[:, 0], offsets[:, 1], ".", color=colour, markersize=2,
                      label=f"{telemetry.split}: {telemetry.n_accepted}/{telemetry.n_input_positions}")
            overlap = telemetry.measured_overlap
            summary.append(f"{telemetry.split}: {telemetry.selection_strategy}, measured overlap "
                           + ("—" if overlap is None else f"{overlap:.2f}")
                           + (" (below floor)" if telemetry.below_floor else ""))
        spacing = next(v.telemetry.spacing_threshold for v in scan_views if v.telemetry.view == view)
        axis.set_title(f"{view}: S = {'all' if spacing is None else f'{spacing:.1f} px'}\n" + "\n".join(summary),
                       fontsize=8)
        axis.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=7, frameon=False)
        axis.set_axis_off()
    first = scan_views[0].telemetry
    figure.suptitle(f"{Cell(first.dose)}: kept positions (the same at every dose) with discs of the measured probe "
                    f"diameter {first.probe_diameter_px:.1f} px", fontsize=9)
    return figure


def _discs(offsets: np.ndarray, diameter: float, colour: str, alpha: float, axis: Any) -> EllipseCollection:
    """Filled discs of ``diameter`` data px centred at ``offsets`` (x, y)."""
    return EllipseCollection(diameter, diameter, 0.0, units="xy", offsets=offsets, offset_transform=axis.transData,
                             facecolors=colour, edgecolors="none", alpha=alpha)
