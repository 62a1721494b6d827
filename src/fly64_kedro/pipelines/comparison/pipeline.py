"""Comparison wiring: one scoring job per (dose, view, split), then the table, summary and figures."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.study import SPLITS
from fly64_kedro.pipelines.comparison import figures, nodes
from fly64_kedro.pipelines.jobs import bind_job, dose_namespaces, job_cells

BASELINE_VIEW = "baseline"


def _arms(namespace: str, view: str, split: str) -> dict[str, str]:
    """Method → object dataset of one cell; the gs1 arm of the baseline view is its own network."""
    gs1_view_dataset = (f"{namespace}.{view}.{split}.pinn_object" if view == BASELINE_VIEW
                        else f"{namespace}.{view}.{split}.pinn_gs1_object")
    return {
        "pinn": f"{namespace}.{view}.{split}.pinn_object",
        "pinn_gs1": gs1_view_dataset,
        "lsqml": f"{namespace}.{view}.{split}.lsqml_object",
    }


def _cell_pipeline(namespace: str, dose: float, view: str, split: str) -> Pipeline:
    prefix = f"{namespace}.{view}.{split}"
    return Pipeline(
        [Node(bind_job(nodes.score_view_cell, dose=dose, view=view, split=split, namespace=namespace),
              {"ground_truth": "ground_truth", "scan_view": f"{prefix}.scan_view", "study": "params:study",
               "comparison": "params:comparison", **_arms(namespace, view, split)},
              [f"{prefix}.cell_scores", f"{prefix}.aligned_images"], name="score_view_cell")],
        namespace=prefix, prefix_datasets_with_namespace=False, tags=["comparison", namespace, view],
    )


def _report_pipeline(study: StudyDesign) -> Pipeline:
    cells = {f"{ns}.{view}.{split}": f"{ns}.{view}.{split}.cell_scores" for ns, _, view, split in job_cells(study)}
    views = list(study.views)
    galleries = [
        Node(bind_job(figures.plot_gallery, dose=dose, split="test"),
             {view: f"{namespace}.{view}.test.aligned_images" for view in views},
             f"{namespace}.gallery_figure", name="plot_gallery", namespace=namespace)
        for namespace, dose in dose_namespaces(study)
    ]
    # every report reads the cells' scores (which carry their lineage), not the tables made from them
    return Pipeline(
        [
            Node(nodes.build_metrics_table, cells, ["metrics_table", "frc_table"], name="build_metrics_table"),
            Node(nodes.summarize_study, {"study": "params:study", **cells}, ["study_summary", "study_summary_markdown"],
                 name="summarize_study"),
            *[Node(bind_job(figures.metric_vs_dose_figure, views=views, split=split), cells,
                   f"metric_vs_dose_{split}_figure", name=f"plot_metric_vs_dose_{split}") for split in SPLITS],
            Node(bind_job(figures.frc_figure, views=views, split="test"), cells, "frc_figure",
                 name="plot_frc_curves"),
            *galleries,
        ],
        tags=["comparison"],
    )


def create_pipeline(study: StudyDesign) -> Pipeline:
    """Score every cell of the grid, then gather, summarise and plot."""
    scoring = [_cell_pipeline(ns, dose, view, split) for ns, dose, view, split in job_cells(study)]
    return sum(scoring, Pipeline([])) + _report_pipeline(study)
