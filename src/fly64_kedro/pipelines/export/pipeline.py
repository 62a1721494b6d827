"""Export wiring: one job per (dose, view, split) writes the cell's arms as ptychodus products."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from fly64_kedro.parameters import StudyDesign
from fly64_kedro.pipelines.export import nodes
from fly64_kedro.pipelines.jobs import bind_job, job_cells
from fly64_kedro.pipelines.training.pipeline import gs1_reference_view


def _cell_pipeline(namespace: str, dose: float, view: str, split: str, gs1_view: str | None) -> Pipeline:
    prefix = f"{namespace}.{view}.{split}"
    inputs = {"scan_view": f"{prefix}.scan_view", "pinn": f"{prefix}.pinn_object", "lsqml": f"{prefix}.lsqml_object",
              "export": "params:export", "study": "params:study"}
    if gs1_view is not None:
        inputs["pinn_gs1"] = f"{prefix}.pinn_gs1_object"
    return Pipeline(
        [Node(bind_job(nodes.export_cell, dose=dose, view=view, split=split, gs1_view=gs1_view), inputs,
              f"{prefix}.ptychodus_products", name="export_ptychodus")],
        namespace=prefix, prefix_datasets_with_namespace=False, tags=["export", namespace, view],
    )


def create_pipeline(study: StudyDesign) -> Pipeline:
    """One export job per cell of the grid; a gridsize-2 view also exports its gridsize-1 network's object."""
    reference = gs1_reference_view(study)
    return sum((_cell_pipeline(namespace, dose, view, split,
                               reference if study.views[view].gridsize > 1 else None)
                for namespace, dose, view, split in job_cells(study)), Pipeline([]))
