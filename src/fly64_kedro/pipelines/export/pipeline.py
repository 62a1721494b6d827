"""Export wiring: one job per (dose, view, split) writes the cell's arms as ptychodus products."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from fly64_kedro.methods import Method
from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.study import Cell
from fly64_kedro.pipelines.export import nodes
from fly64_kedro.pipelines.jobs import bind_job


def _arms(cell: Cell, study: StudyDesign, methods: tuple[Method, ...]) -> dict[str, str]:
    """Arm name → object dataset of every method of the cell; an arm whose object is another arm's (the gs1
    network on its own reference view is that view's network) is left out."""
    arms: dict[str, str] = {}
    for method in methods:
        dataset = method.object_dataset(cell, study)
        if dataset is not None and dataset not in arms.values():
            arms[method.name] = dataset
    return arms


def _cell_pipeline(cell: Cell, study: StudyDesign, methods: tuple[Method, ...]) -> Pipeline:
    descriptions = {method.name: method.description for method in methods}
    inputs = {"scan_view": cell.dataset("scan_view"), "export": "params:export", "study": "params:study",
              **_arms(cell, study, methods)}
    return Pipeline(
        [Node(bind_job(nodes.export_cell, cell=cell, descriptions=descriptions), inputs,
              cell.dataset("ptychodus_products"), name="export_ptychodus")],
        namespace=cell.namespace, prefix_datasets_with_namespace=False,
        tags=["export", cell.dose_namespace, cell.view],
    )


def create_pipeline(study: StudyDesign, methods: tuple[Method, ...]) -> Pipeline:
    """One export job per cell of the grid over ``methods`` (``methods.study_methods``): every arm with an object."""
    return sum((_cell_pipeline(cell, study, methods) for cell in study.cells()), Pipeline([]))
