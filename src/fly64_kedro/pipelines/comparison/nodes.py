"""Comparison nodes: score each cell's arms, gather one tidy table, summarise it per split."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from fly64_kedro.metrics import score_cell
from fly64_kedro.metrics.score import ROW_COLUMNS
from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.comparison import ComparisonParams
from fly64_kedro.provenance import LOADED_FROM_KEY
from fly64_kedro.validation import validate_ground_truth

logger = logging.getLogger(__name__)

TRUTH_CEILING = "truth_ceiling"
"""The ground truth scored through the same path: the best any method can score in a cell."""

METHOD_ORDER: tuple[str, ...] = ("pinn", "pinn_gs1", "lsqml", TRUTH_CEILING)
HEADLINE_METRICS: tuple[tuple[str, str], ...] = (("phase", "ms_ssim"), ("amplitude", "ms_ssim"))
"""Summary columns, phase MS-SSIM first (the study's headline metric); the CSV table holds every metric."""


def _json_safe(value: Any) -> Any:
    """NaN/±inf → None so JSON stays standard; other values unchanged."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def score_view_cell(
    ground_truth: dict[str, Any],
    scan_view: dict[str, Any],
    study: StudyDesign,
    comparison: ComparisonParams,
    *,
    dose: float,
    view: str,
    split: str,
    namespace: str,
    **arms: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Align and score every arm of one cell on the view's positions.

    ``arms`` maps method name → object payload (``object``, ``canvas_origin_yx``,
    ``_metadata.status``). Returns (scores JSON: tidy rows, FRC rows, records; aligned
    images NPZ: ``truth`` and one (h, w) complex64 image per scored arm, for the gallery).
    The truth itself is scored as the ``truth_ceiling`` arm.
    """
    truth, _ = validate_ground_truth(ground_truth, study.patch_size)
    ycoords, xcoords = scan_view["ycoords"], scan_view["xcoords"]
    ceiling = {"object": truth, "canvas_origin_yx": np.zeros(2), "_metadata": {"status": "ok"}}
    coordinates = {"dose": dose, "view": view, "split": split}
    rows, frc_rows, records, images = [], [], {}, {}
    for method, payload in {**arms, TRUTH_CEILING: ceiling}.items():
        result = score_cell(payload, truth, ycoords, xcoords, study.patch_size, comparison,
                            f"{namespace}.{view}.{split}.{method}")
        rows += result.rows(**coordinates, method=method)
        frc_rows += result.frc_rows(**coordinates, method=method)
        records[method] = {**result.record,
                           "input": payload.get("_metadata", {}).get(LOADED_FROM_KEY)}
        if result.alignment is not None:
            images[method] = result.alignment.aligned
            images["truth"] = result.alignment.truth
    statuses = {method: record.get("status") for method, record in records.items()}
    logger.info("compared %s.%s.%s: %s", namespace, view, split, statuses)
    scores = {
        "dose": dose, "view": view, "split": split,
        "rows": [{key: _json_safe(value) for key, value in row.items()} for row in rows],
        "frc_rows": frc_rows,
        "records": records,
    }
    aligned = {key: np.asarray(value, dtype=np.complex64) for key, value in images.items()}
    aligned["_metadata"] = {"dose": dose, "view": view, "split": split, "statuses": statuses}
    return scores, aligned


def build_metrics_table(**cell_scores: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics, FRC curves) as tidy tables, one row per (dose, view, split, method, component, metric)."""
    metrics = pd.DataFrame([row for scores in cell_scores.values() for row in scores["rows"]],
                           columns=list(ROW_COLUMNS))
    frc = pd.DataFrame([row for scores in cell_scores.values() for row in scores["frc_rows"]],
                       columns=["dose", "view", "split", "method", "component", "frequency", "frc"])
    metrics = metrics.sort_values(["split", "dose", "view", "method", "component", "metric"], kind="stable")
    return metrics.reset_index(drop=True), frc


def _cell_table(metrics: pd.DataFrame, split: str, views: list[str]) -> pd.DataFrame:
    """Rows dose × view, columns method·metric plus pinn − lsqml per headline metric, for one split."""
    subset = metrics[metrics["split"] == split]
    wide = subset.pivot_table(index=["dose", "view"], columns=["method", "component", "metric"],
                              values="value", aggfunc="first", dropna=False)
    table = pd.DataFrame(index=wide.index)
    table["illuminated fraction"] = wide.get((TRUTH_CEILING, "alignment", "illuminated_fraction"), np.nan)
    for component, metric in HEADLINE_METRICS:
        for method in METHOD_ORDER:
            key = (method, component, metric)
            table[f"{method} {component} {metric}"] = wide[key] if key in wide else np.nan
        table[f"pinn − lsqml {component} {metric}"] = (
            table[f"pinn {component} {metric}"] - table[f"lsqml {component} {metric}"])
    order = {view: index for index, view in enumerate(views)}
    return table.reset_index().sort_values(["dose", "view"], key=lambda c: c.map(order) if c.name == "view" else c)


def _status_notes(metrics: pd.DataFrame) -> list[dict[str, Any]]:
    """One entry per (cell, method) that was not scored, with its status and reason."""
    bad = metrics[metrics["status"] != "ok"].drop_duplicates(["dose", "view", "split", "method"])
    return bad[["dose", "view", "split", "method", "status", "reason"]].to_dict(orient="records")


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


def summarize_study(metrics: pd.DataFrame, study: StudyDesign) -> tuple[dict[str, Any], str]:
    """Study summary (JSON, Markdown): one table per split, rows dose × view, never averaged.

    Columns are each method's headline metrics (phase MS-SSIM first) and the per-cell
    difference pinn − lsqml; cells that were skipped or failed are listed with their reason.
    """
    views = list(study.views)
    tables = {split: _cell_table(metrics, split, views) for split in ("test", "train")}
    notes = _status_notes(metrics)
    summary = {
        "headline_metric": "phase ms_ssim",
        "methods": {"pinn": "network trained on this (dose, view); gridsize 1 for baseline, 2 otherwise",
                    "pinn_gs1": "gridsize-1 network of the baseline view, run on this view's positions",
                    "lsqml": "pty-chi LSQML on this view's positions",
                    TRUTH_CEILING: "the ground truth scored through the same path (coverage ceiling)"},
        "tables": {split: [{k: _json_safe(v) for k, v in row.items()} for row in table.to_dict(orient="records")]
                   for split, table in tables.items()},
        "not_scored": notes,
    }
    parts = ["# fly64 dose/overlap study — summary", "",
             "Headline: phase MS-SSIM (1 = perfect). Every cell is one (dose, view, split); nothing is averaged "
             "across doses or views. `pinn − lsqml` > 0 means the network scored higher (for RMSE, lower is better).",
             ""]
    for split, table in tables.items():
        parts += [f"## {split} split", "", _markdown_table(table), ""]
    if notes:
        parts += ["## Not scored", ""] + [
            f"- {n['dose']:g} / {n['view']} / {n['split']} / {n['method']}: {n['status']} — {n['reason']}" for n in notes]
    return summary, "\n".join(parts) + "\n"
