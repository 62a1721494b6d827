"""Study figures (matplotlib ``Figure`` objects, saved by ``MatplotlibDataset``; no pyplot, no global state)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fly64_kedro.methods import FLAT_FLOOR, TRUTH_CEILING, Method
from fly64_kedro.metrics.score import phase_reference, wrapped_phase
from fly64_kedro.pipelines.comparison.nodes import build_metrics_table


def _gallery_rows(methods: tuple[Method, ...]) -> list[tuple[str, str]]:
    """(image key, label) of the gallery's rows: the truth, the ceiling, then every arm but the floor."""
    return [("truth", "truth"), (TRUTH_CEILING.name, TRUTH_CEILING.label),
            *[(m.name, m.label) for m in methods if m.name not in (FLAT_FLOOR.name, TRUTH_CEILING.name)]]


def plot_gallery(dose: float, split: str, methods: tuple[Method, ...], **aligned_by_view: dict[str, Any]) -> Figure:
    """Amplitude and phase of truth, ceiling, networks and LSQML (rows) for every view (columns) at one dose.

    Phases are shown with the scoring's branch cut (centred on the truth's circular mean
    over the support), so a picture shows exactly what was scored.
    """
    views = list(aligned_by_view)
    rows = _gallery_rows(methods)
    figure = Figure(figsize=(3.2 * len(views), 2.6 * 2 * len(rows)), constrained_layout=True)
    axes = figure.subplots(2 * len(rows), len(views), squeeze=False)
    for column, view in enumerate(views):
        images = aligned_by_view[view]
        truth = images.get("truth")
        branch_cut = phase_reference(truth, images["support"]) if truth is not None else 0.0
        for row, (arm, label) in enumerate(rows):
            for offset, (part, cmap) in enumerate((("amplitude", "gray"), ("phase", "twilight"))):
                axis = axes[2 * row + offset, column]
                axis.set_xticks([]), axis.set_yticks([])
                if arm not in images or truth is None:
                    status = images.get("_metadata", {}).get("statuses", {}).get(arm, "absent")
                    axis.text(0.5, 0.5, f"{label}\n{status}", ha="center", va="center", transform=axis.transAxes)
                    continue
                values, reference = (
                    (np.abs(images[arm]), np.abs(truth)) if part == "amplitude" else
                    (wrapped_phase(images[arm], branch_cut), wrapped_phase(truth, branch_cut)))
                axis.imshow(values, cmap=cmap, vmin=reference.min(), vmax=reference.max())
                if column == 0:
                    axis.set_ylabel(f"{label}\n{part}", fontsize=8)
                if row == 0 and offset == 0:
                    axis.set_title(view)
    figure.suptitle(f"dose {dose:g} photons/pattern, {split} split (aligned to the truth)")
    return figure


def plot_metric_vs_dose(metrics: pd.DataFrame, views: list[str], split: str, methods: tuple[Method, ...],
                        panels: tuple[tuple[str, str], ...] = (("phase", "ms_ssim"), ("amplitude", "ms_ssim"))) -> Figure:
    """Metric against dose, one panel per (metric, view), one line per method, for one split."""
    figure = Figure(figsize=(4 * len(views), 3.2 * len(panels)), constrained_layout=True)
    axes = figure.subplots(len(panels), len(views), squeeze=False, sharex=True)
    subset = metrics[metrics["split"] == split]
    for row, (component, metric) in enumerate(panels):
        for column, view in enumerate(views):
            axis = axes[row, column]
            cell = subset[(subset["view"] == view) & (subset["component"] == component) & (subset["metric"] == metric)]
            for method in methods:
                line = cell[cell["method"] == method.name].sort_values("dose")
                if not line.empty:
                    axis.plot(line["dose"], line["value"], marker="o", color=method.colour, label=method.label,
                              linestyle=":" if method.control else "-")
            axis.set_xscale("log")
            axis.set_title(f"{view}: {component} {metric}", fontsize=9)
            axis.set_xlabel("dose (photons/pattern)")
            axis.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    figure.suptitle(f"{split} split")
    return figure


def plot_frc_curves(frc: pd.DataFrame, views: list[str], split: str, methods: tuple[Method, ...],
                    component: str = "phase") -> Figure:
    """FRC curves (one panel per dose × view, one line per method) with the 0.5 and 1/7 thresholds."""
    doses = sorted(frc["dose"].unique()) if not frc.empty else []
    figure = Figure(figsize=(4 * len(views), 3 * max(len(doses), 1)), constrained_layout=True)
    axes = figure.subplots(max(len(doses), 1), len(views), squeeze=False, sharex=True, sharey=True)
    subset = frc[(frc["split"] == split) & (frc["component"] == component)]
    for row, dose in enumerate(doses):
        for column, view in enumerate(views):
            axis = axes[row, column]
            cell = subset[(subset["dose"] == dose) & (subset["view"] == view)]
            for method in methods:
                curve = cell[cell["method"] == method.name]
                if not curve.empty:
                    axis.plot(curve["frequency"], curve["frc"], color=method.colour, label=method.label,
                              linestyle=":" if method.control else "-")
            for threshold in (0.5, 1 / 7):
                axis.axhline(threshold, color="k", lw=0.6, ls="--")
            axis.set_title(f"dose {dose:g}, {view}", fontsize=9)
            axis.set_xlabel("spatial frequency (cycles/px)")
            axis.set_ylim(-0.2, 1.05)
    axes[0, 0].legend(fontsize=7)
    figure.suptitle(f"{component} FRC, {split} split")
    return figure


def metric_vs_dose_figure(views: list[str], split: str, methods: tuple[Method, ...],
                          **cell_scores: dict[str, Any]) -> Figure:
    """``plot_metric_vs_dose`` of the cells' scores (the node: it reads the cells, which carry their lineage)."""
    metrics, _ = build_metrics_table(**cell_scores)
    return plot_metric_vs_dose(metrics, views, split, methods)


def frc_figure(views: list[str], split: str, methods: tuple[Method, ...], **cell_scores: dict[str, Any]) -> Figure:
    """``plot_frc_curves`` of the cells' scores (the node: it reads the cells, which carry their lineage)."""
    _, frc = build_metrics_table(**cell_scores)
    return plot_frc_curves(frc, views, split, methods)
