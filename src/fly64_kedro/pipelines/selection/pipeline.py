"""Selection wiring: one job per (dose, view) for both splits, then the report and the figure."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.study import SPLITS
from fly64_kedro.pipelines.jobs import bind_job, dose_namespaces, job_cells
from fly64_kedro.pipelines.selection import nodes


def _job_pipeline(namespace: str, dose: float, view: str) -> Pipeline:
    return Pipeline(
        [
            Node(bind_job(nodes.select_scan_views, dose=dose, view=view),
                 [f"{namespace}.{split}.measurements" for split in SPLITS]
                 + ["probe", "params:study", "params:selection"],
                 [f"{namespace}.{view}.{split}.scan_view" for split in SPLITS], name=f"select_{view}"),
        ],
        # one `selection` namespace per dose: nesting it under the view's job namespace would
        # make that namespace read models and write features, a layer cycle in kedro-viz
        namespace=f"{namespace}.selection",
        prefix_datasets_with_namespace=False,
        tags=["selection", namespace, view],
    )


def _report_pipeline(study: StudyDesign) -> Pipeline:
    every_view = [f"{namespace}.{view}.{split}.scan_view" for namespace, _, view, split in job_cells(study)]
    first_dose, _ = next(dose_namespaces(study))
    first_dose_views = [f"{first_dose}.{view}.{split}.scan_view" for view in study.views for split in SPLITS]
    return Pipeline(
        [
            Node(nodes.summarize_selection, every_view, ["selection_report", "selection_table"],
                 name="summarize_selection"),
            # the only selection node that reads the truth: a picture for people, not an input of any method
            Node(nodes.plot_selection, ["ground_truth", "params:selection", *first_dose_views], "selection_figure",
                 name="plot_selection"),
        ],
        tags=["selection"],
    )


def create_pipeline(study: StudyDesign) -> Pipeline:
    """One ``select_<view>`` job per (dose, view) for both splits (namespace ``dose_1000.selection``), then report and figure."""
    jobs = [_job_pipeline(namespace, dose, view) for namespace, dose in dose_namespaces(study) for view in study.views]
    return sum(jobs, Pipeline([])) + _report_pipeline(study)
