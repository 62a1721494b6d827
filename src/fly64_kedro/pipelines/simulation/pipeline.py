"""Simulation wiring: shared nodes once, then one namespace per dose (``dose_1000`` …)."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from fly64_kedro.parameters import StudyDesign
from fly64_kedro.pipelines.jobs import bind_job, dose_namespaces
from fly64_kedro.pipelines.simulation import nodes


def _ground_truth_pipeline(synthesize: bool) -> Pipeline:
    shared = [
        Node(nodes.prepare_probe, ["ground_truth", "params:study"], "probe", name="prepare_probe"),
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


def _dose_pipeline(namespace: str, dose: float) -> Pipeline:
    return Pipeline(
        [
            Node(bind_job(nodes.simulate_diffraction, dose=dose),
                 ["ground_truth", "probe", "scan_positions", "params:study"], f"{namespace}.diffraction",
                 name="simulate_diffraction"),
            Node(nodes.split_measurements, [f"{namespace}.diffraction", "params:study"],
                 [f"{namespace}.train.measurements", f"{namespace}.test.measurements"], name="split_measurements"),
        ],
        namespace=namespace,
        prefix_datasets_with_namespace=False,
        tags=["simulation", namespace],
    )


def create_pipeline(study: StudyDesign, synthesize_ground_truth: bool = True) -> Pipeline:
    """Ground truth (synthesized, or imported from the ``user_ground_truth`` catalog entry), then one job per dose."""
    per_dose = [_dose_pipeline(namespace, dose) for namespace, dose in dose_namespaces(study)]
    return _ground_truth_pipeline(synthesize_ground_truth) + sum(per_dose, Pipeline([]))
