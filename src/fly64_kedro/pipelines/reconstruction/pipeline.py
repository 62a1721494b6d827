"""Reconstruction wiring: one namespace per job (``dose_1000.sparse.test``), then the aggregates."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from fly64_kedro.parameters import StudyDesign
from fly64_kedro.pipelines.jobs import bind_job, job_cells
from fly64_kedro.pipelines.reconstruction import nodes


def _job_pipeline(namespace: str, dose: float, view: str, split: str) -> Pipeline:
    job = f"{namespace}.{view}.{split}"
    return Pipeline(
        [
            Node(bind_job(nodes.reconstruct_view, dose=dose, view=view, split=split),
                 [f"{job}.scan_view", "params:lsqml", "params:study"],
                 [f"{job}.lsqml_object", f"{job}.lsqml_record"], name="lsqml"),
        ],
        namespace=job,
        prefix_datasets_with_namespace=False,
        tags=["reconstruction", namespace, view],
    )


def create_pipeline(study: StudyDesign) -> Pipeline:
    """Every LSQML job of the grid, then the manifest and skip summary over all of them."""
    cells = list(job_cells(study))
    jobs = [_job_pipeline(*cell) for cell in cells]
    records = [f"{namespace}.{view}.{split}.lsqml_record" for namespace, _, view, split in cells]
    summary = Node(nodes.summarize_jobs, ["params:lsqml", "params:study", *records],
                   ["reconstruction_manifest", "reconstruction_skip_summary"], name="summarize_reconstruction_jobs",
                   tags=["reconstruction"])
    return sum(jobs, Pipeline([])) + Pipeline([summary])
