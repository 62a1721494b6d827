"""Reconstruction wiring: one namespace per engine job (``dose_1000.sparse.test.lsqml``), then the aggregates."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.study import Cell
from fly64_kedro.pipelines.jobs import bind_job
from fly64_kedro.pipelines.reconstruction import nodes


def _job_pipeline(cell: Cell, engine: str) -> Pipeline:
    return Pipeline(
        [
            Node(bind_job(nodes.reconstruct_view, cell=cell, engine=engine),
                 [cell.dataset("scan_view"), "params:reconstruction", "params:study"],
                 [cell.dataset(f"{engine}_object"), cell.dataset(f"{engine}_record")], name=engine),
        ],
        namespace=cell.namespace,
        prefix_datasets_with_namespace=False,
        tags=["reconstruction", cell.dose_namespace, cell.view, engine],
    )


def create_pipeline(study: StudyDesign, engines: list[str]) -> Pipeline:
    """Every engine's job on every cell of the grid, then the manifest and skip summary over all of them."""
    jobs = [_job_pipeline(cell, engine) for engine in engines for cell in study.cells()]
    records = [cell.dataset(f"{engine}_record") for engine in engines for cell in study.cells()]
    summary = Node(nodes.summarize_jobs, ["params:reconstruction", "params:study", *records],
                   ["reconstruction_manifest", "reconstruction_skip_summary"], name="summarize_reconstruction_jobs",
                   tags=["reconstruction"])
    return sum(jobs, Pipeline([])) + Pipeline([summary])
