"""Simulation wiring: shared nodes once, then one namespace per dose (``dose_1000`` …)."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.study import Cell
from fly64_kedro.pipelines.jobs import bind_job
from fly64_kedro.pipelines.simulation import nodes


def _ground_truth_pipeline(synthesize: bool) -> Pipeline:
    shared = [
        Node(nodes.prepare_probe, "ground_truth", "probe", name="prepare_probe"),
        Node(nodes.draw_scan_positions, ["ground_truth", "params:study", "params:scan"], "scan_positions",
             name="draw_scan_positions"),
        Node(nodes.extract_truth_patches, ["ground_truth", "scan_positions", "params:study"], "truth_patches",
             name="extract_truth_patches"),
    ]
    if synthesize:
        shared.insert(0, Node(nodes.synthesize_ground_truth, ["params:ground_truth", "params:study"], "ground_truth",
                              name="synthesize_ground_truth"))
    else:
        shared.insert(0, Node(nodes.import_ground_truth, ["user_ground_truth", "params:study"], "ground_truth",
                              name="import_ground_truth"))
    return Pipeline(shared, tags=["simulation"])


def _dose_pipeline(cell: Cell) -> Pipeline:
    return Pipeline(
        [
            Node(bind_job(nodes.simulate_diffraction, cell=cell),
                 ["ground_truth", "probe", "scan_positions", "params:study"], cell.dataset("diffraction"),
                 name="simulate_diffraction"),
            Node(nodes.split_measurements, [cell.dataset("diffraction"), "params:study"],
                 [cell.dataset("train.measurements"), cell.dataset("test.measurements")], name="split_measurements"),
        ],
        namespace=cell.namespace,
        prefix_datasets_with_namespace=False,
        tags=["simulation", cell.namespace],
    )


def create_pipeline(study: StudyDesign, synthesize_ground_truth: bool = True) -> Pipeline:
    """Ground truth (synthesized, or imported from the ``user_ground_truth`` catalog entry), then one job per dose."""
    per_dose = [_dose_pipeline(cell) for cell in study.dose_cells()]
    return _ground_truth_pipeline(synthesize_ground_truth) + sum(per_dose, Pipeline([]))
