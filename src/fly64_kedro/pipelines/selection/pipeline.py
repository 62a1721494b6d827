"""Selection wiring: one job per (dose, view) for both splits, then the report and the figure."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.study import SPLITS, Cell
from fly64_kedro.pipelines.jobs import bind_job
from fly64_kedro.pipelines.selection import nodes


def _job_pipeline(cell: Cell) -> Pipeline:
    return Pipeline(
        [
            Node(bind_job(nodes.select_scan_views, cell=cell),
                 [Cell(cell.dose).dataset(f"{split}.measurements") for split in SPLITS]
                 + ["probe", "params:study", "params:selection"],
                 [cell.dataset(f"{split}.scan_view") for split in SPLITS], name=f"select_{cell.view}"),
        ],
        # one `selection` namespace per dose: nesting it under the view's job namespace would
        # make that namespace read models and write features, a layer cycle in kedro-viz
        namespace=Cell(cell.dose).dataset("selection"),
        prefix_datasets_with_namespace=False,
        tags=["selection", cell.dose_namespace, cell.view],
    )


def _report_pipeline(study: StudyDesign) -> Pipeline:
    every_view = [cell.dataset("scan_view") for cell in study.cells()]
    first_dose_views = [cell.dataset("scan_view") for cell in study.cells() if cell.dose == study.doses[0]]
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
    return sum((_job_pipeline(cell) for cell in study.network_cells()), Pipeline([])) + _report_pipeline(study)
