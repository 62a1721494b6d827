"""Comparison nodes: score each cell's arms, gather one tidy table, summarise it per split."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from fly64_kedro.contracts import GroundTruth, ObjectEstimate, ScanView
from fly64_kedro.methods import FLAT_FLOOR, PINN, TRUTH_CEILING, Method
from fly64_kedro.metrics import score_cell
from fly64_kedro.metrics.score import ROW_COLUMNS
from fly64_kedro.metrics.support import Support, view_support
from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.comparison import ComparisonParams
from fly64_kedro.parameters.study import Cell
from fly64_kedro.physics.geometry import canvas_for_positions
from fly64_kedro.provenance import LOADED_FROM_KEY
from fly64_kedro.records import finite_or_none

logger = logging.getLogger(__name__)

HEADLINE_METRICS: tuple[tuple[str, str], ...] = (("phase", "ms_ssim"), ("amplitude", "ms_ssim"))
"""Summary columns, phase MS-SSIM first (the study's headline metric); the CSV table holds every metric."""


def control_arms(truth: np.ndarray, support: Support, ycoords: np.ndarray, xcoords: np.ndarray,
                 patch_size: int) -> dict[str, ObjectEstimate]:
    """The floor and ceiling arms of a cell, as object estimates on the view's canvas.

    Both lie on the canvas that covers every patch of the view (``physics.geometry``):
    ``flat_floor`` is 1+0j everywhere; ``truth_ceiling`` is the truth on the support and
    1+0j elsewhere: the best any method could know from this view.
    """
    origin, shape = canvas_for_positions(ycoords, xcoords, patch_size, 0)
    oy, ox = int(origin[0]), int(origin[1])
    region = (oy, oy + shape[0], ox, ox + shape[1])
    ceiling = np.ones(shape, dtype=np.complex64)
    top, left = max(oy, 0), max(ox, 0)
    bottom, right = min(oy + shape[0], truth.shape[0]), min(ox + shape[1], truth.shape[1])
    ceiling[top - oy:bottom - oy, left - ox:right - ox] = truth[top:bottom, left:right]
    ceiling[~support.mask_over(region)] = 1
    return {FLAT_FLOOR.name: ObjectEstimate(np.ones(shape, dtype=np.complex64), origin),
            TRUTH_CEILING.name: ObjectEstimate(ceiling, origin)}


def score_view_cell(
    ground_truth: GroundTruth,
    scan_view: ScanView,
    study: StudyDesign,
    comparison: ComparisonParams,
    *,
    cell: Cell,
    **arms: ObjectEstimate,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Align and score every arm of one (dose, view, split) cell, and its floor and ceiling, on the cell's support.

    ``arms`` maps method name → its ``ObjectEstimate``. The support comes from the view's
    positions and probe. Returns (scores JSON: tidy rows, FRC rows, records; aligned images
    NPZ: ``truth``, the ``support`` mask and one (h, w) complex64 image per scored arm, for
    the gallery).
    """
    truth = ground_truth.obj
    ycoords, xcoords = scan_view.ycoords, scan_view.xcoords
    support = view_support(scan_view.probe, ycoords, xcoords, truth.shape, comparison.support.threshold)
    coordinates = {"dose": cell.dose, "view": cell.view, "split": cell.split}
    rows, frc_rows, records, images = [], [], {}, {}
    every_arm = {**arms, **control_arms(truth, support, ycoords, xcoords, study.patch_size)}
    for method, estimate in every_arm.items():
        result = score_cell(estimate, truth, support, comparison, cell.dataset(method))
        rows += result.rows(**coordinates, method=method)
        frc_rows += result.frc_rows(**coordinates, method=method)
        records[method] = {**result.record, "input": estimate.metadata.get(LOADED_FROM_KEY)}
        if result.alignment is not None:
            images[method] = result.alignment.aligned
            images["truth"] = result.alignment.truth
            images["support"] = result.alignment.support
    statuses = {method: record.get("status") for method, record in records.items()}
    logger.info("compared %s: %s", cell, statuses)
    scores = {
        **coordinates,
        "support": {"threshold": support.threshold, "region_yx": list(support.region_yx),
                    "pixels": int(support.mask.sum()), "fraction_of_its_box": float(support.mask.mean())},
        "rows": [{key: finite_or_none(value) for key, value in row.items()} for row in rows],
        "frc_rows": frc_rows,
        "records": records,
    }
    aligned = {key: np.asarray(value, dtype=bool if key == "support" else np.complex64) for key, value in images.items()}
    aligned["_metadata"] = {**coordinates, "statuses": statuses}
    return scores, aligned


def build_metrics_table(**cell_scores: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics, FRC curves) as tidy tables, one row per (dose, view, split, method, component, metric)."""
    metrics = pd.DataFrame([row for scores in cell_scores.values() for row in scores["rows"]],
                           columns=list(ROW_COLUMNS))
    frc = pd.DataFrame([row for scores in cell_scores.values() for row in scores["frc_rows"]],
                       columns=["dose", "view", "split", "method", "component", "frequency", "frc"])
    metrics = metrics.sort_values(["split", "dose", "view", "method", "component", "metric"], kind="stable")
    return metrics.reset_index(drop=True), frc


def _cell_table(metrics: pd.DataFrame, split: str, views: list[str], methods: tuple[Method, ...]) -> pd.DataFrame:
    """Rows dose × view, columns method·metric plus pinn − <engine> per headline metric, for one split."""
    subset = metrics[metrics["split"] == split]
    wide = subset.pivot_table(index=["dose", "view"], columns=["method", "component", "metric"],
                              values="value", aggfunc="first", dropna=False)
    table = pd.DataFrame(index=wide.index)
    table["support fraction"] = wide.get((TRUTH_CEILING.name, "alignment", "support_fraction"), np.nan)
    for component, metric in HEADLINE_METRICS:
        for method in methods:
            key = (method.name, component, metric)
            table[f"{method.name} {component} {metric}"] = wide.get(key, np.nan)
        for method in methods:
            if method.iterative:
                table[f"{PINN.name} − {method.name} {component} {metric}"] = (
                    table[f"{PINN.name} {component} {metric}"] - table[f"{method.name} {component} {metric}"])
    order = {view: index for index, view in enumerate(views)}
    return table.reset_index().sort_values(["dose", "view"], key=lambda c: c.map(order) if c.name == "view" else c)


def _status_notes(metrics: pd.DataFrame) -> list[dict[str, Any]]:
    """One entry per (cell, method, status, reason) that is not ok: a skipped or failed arm, or undefined metrics."""
    bad = metrics[metrics["status"] != "ok"]
    keys = ["dose", "view", "split", "method", "status", "reason"]
    grouped = bad.groupby(keys, sort=False, dropna=False)["metric"].apply(
        lambda names: sorted({f"{c}.{m}" for c, m in zip(bad.loc[names.index, "component"], names)}))
    return [{**dict(zip(keys, key)), "metrics": value} for key, value in grouped.items()]


def _markdown_table(table: pd.DataFrame) -> str:
    """A Markdown pipe table with 3 decimals; empty cells for NaN."""
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    lines = [header, rule]
    for _, row in table.iterrows():
        cells = [f"{value:g}" if name == "dose" else
                 "" if isinstance(value, float) and math.isnan(value) else
                 f"{value:.3f}" if isinstance(value, float) else str(value)
                 for name, value in row.items()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summarize_study(study: StudyDesign, methods: tuple[Method, ...],
                    **cell_scores: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Study summary (JSON, Markdown) of the cells' scores: one table per split, rows dose × view, never averaged.

    Columns are each arm's headline metrics (phase MS-SSIM first) between the cell's flat
    floor and truth ceiling, and the per-cell difference of the network to each iterative
    engine; arms that were skipped or failed, and metrics a support was too small for, are
    listed with their reason.
    """
    metrics, _ = build_metrics_table(**cell_scores)
    views = list(study.views)
    tables = {split: _cell_table(metrics, split, views, methods) for split in ("test", "train")}
    notes = _status_notes(metrics)
    summary = {
        "headline_metric": "phase ms_ssim",
        "methods": {method.name: method.description for method in methods},
        "scoring": "every metric on the cell's support (summed probe intensity over the view's kept positions above "
                   "a fraction of its maximum); one phase branch cut per image",
        "tables": {split: [{k: finite_or_none(v) for k, v in row.items()} for row in table.to_dict(orient="records")]
                   for split, table in tables.items()},
        "not_scored": notes,
    }
    reading = ("Headline: phase MS-SSIM on the cell's support (1 = perfect). Every cell is one (dose, view, split); "
               "nothing is averaged across doses or views. Read each method between its cell's `flat_floor` (the flat "
               "object every method starts from) and `truth_ceiling` (the truth on the support, flat elsewhere). "
               "`pinn − <engine>` > 0 means the network scored higher.")
    parts = ["# fly64 dose/overlap study — summary", "", reading, ""]
    for split, table in tables.items():
        parts += [f"## {split} split", "", _markdown_table(table), ""]
    if notes:
        parts += ["## Not scored", ""] + [
            f"- {n['dose']:g} / {n['view']} / {n['split']} / {n['method']}: {n['status']} — {n['reason']}"
            + (f" ({', '.join(n['metrics'])})" if n["status"] == "undefined" else "") for n in notes]
    return summary, "\n".join(parts) + "\n"
