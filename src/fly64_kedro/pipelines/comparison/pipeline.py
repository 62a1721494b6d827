"""Comparison wiring: one scoring job per (dose, view, split) over every arm of the method registry, then the reports."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from fly64_kedro.methods import Method
from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.study import SPLITS, Cell
from fly64_kedro.pipelines.comparison import figures, nodes
from fly64_kedro.pipelines.jobs import bind_job


def _cell_pipeline(cell: Cell, study: StudyDesign, methods: tuple[Method, ...]) -> Pipeline:
    arms = {method.name: method.object_dataset(cell, study) for method in methods if not method.control}
    return Pipeline(
        [Node(bind_job(nodes.score_view_cell, cell=cell),
              {"ground_truth": "ground_truth", "scan_view": cell.dataset("scan_view"), "study": "params:study",
               "comparison": "params:comparison", **arms},
              [cell.dataset("cell_scores"), cell.dataset("aligned_images")], name="score_view_cell")],
        namespace=cell.namespace, prefix_datasets_with_namespace=False,
        tags=["comparison", cell.dose_namespace, cell.view],
    )


def _report_pipeline(study: StudyDesign, methods: tuple[Method, ...]) -> Pipeline:
    cells = {str(cell): cell.dataset("cell_scores") for cell in study.cells()}
    views = list(study.views)
    galleries = [
        Node(bind_job(figures.plot_gallery, dose=dose_cell.dose, split="test", methods=methods),
             {view: dose_cell.with_view(view).with_split("test").dataset("aligned_images") for view in views},
             dose_cell.dataset("gallery_figure"), name="plot_gallery", namespace=dose_cell.namespace)
        for dose_cell in study.dose_cells()
    ]
    # every report reads the cells' scores (which carry their lineage), not the tables made from them
    return Pipeline(
        [
            Node(nodes.build_metrics_table, cells, ["metrics_table", "frc_table"], name="build_metrics_table"),
            Node(bind_job(nodes.summarize_study, methods=methods), {"study": "params:study", **cells},
                 ["study_summary", "study_summary_markdown"], name="summarize_study"),
            *[Node(bind_job(figures.metric_vs_dose_figure, views=views, split=split, methods=methods), cells,
                   f"metric_vs_dose_{split}_figure", name=f"plot_metric_vs_dose_{split}") for split in SPLITS],
            Node(bind_job(figures.frc_figure, views=views, split="test", methods=methods), cells, "frc_figure",
                 name="plot_frc_curves"),
            *galleries,
        ],
        tags=["comparison"],
    )


def create_pipeline(study: StudyDesign, methods: tuple[Method, ...]) -> Pipeline:
    """Score every cell of the grid over ``methods`` (``methods.study_methods``), then gather, summarise and plot."""
    scoring = [_cell_pipeline(cell, study, methods) for cell in study.cells()]
    return sum(scoring, Pipeline([])) + _report_pipeline(study, methods)
