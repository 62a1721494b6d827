"""Training wiring: ``dose_1000.dense`` trains, ``dose_1000.dense.test`` predicts and stitches.

Every view with gridsize > 1 is also reconstructed by the gridsize-1 network of the same
dose (trained on the first gridsize-1 view, ``baseline`` by default): ``pinn_gs1_object``.
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.study import SPLITS
from fly64_kedro.pipelines.jobs import bind_job, dose_namespaces
from fly64_kedro.pipelines.training import figures, nodes


def gs1_reference_view(study: StudyDesign) -> str | None:
    """The view whose gridsize-1 network also runs on the gridsize-2 views (the first gridsize-1 view)."""
    return next((view for view, spec in study.views.items() if spec.gridsize == 1), None)


def _train_pipeline(namespace: str, dose: float, view: str, regime: bool) -> Pipeline:
    data = f"{namespace}.train.measurements" if regime else f"{namespace}.{view}.train.scan_view"
    return Pipeline(
        [Node(bind_job(nodes.train_pinn, dose=dose, view=view),
              [data, "params:study", "params:training"],
              [f"{namespace}.{view}.pinn_model", f"{namespace}.{view}.training_history"], name="train_pinn")],
        namespace=f"{namespace}.{view}",
        prefix_datasets_with_namespace=False,
        tags=["training", namespace, view],
    )


def _inference_pipeline(namespace: str, dose: float, view: str, split: str, gs1_view: str | None) -> Pipeline:
    inputs = [f"{namespace}.{view}.{split}.scan_view", f"{namespace}.{view}.pinn_model", "params:study",
              "params:training"]
    outputs = {"object": f"{namespace}.{view}.{split}.pinn_object", "record": f"{namespace}.{view}.{split}.pinn_record"}
    if gs1_view is not None:
        inputs.append(f"{namespace}.{gs1_view}.pinn_model")
        outputs["gs1_object"] = f"{namespace}.{view}.{split}.pinn_gs1_object"
    return Pipeline(
        [Node(bind_job(nodes.reconstruct_with_pinn, dose=dose, view=view, split=split, gs1_view=gs1_view),
              inputs, outputs, name="reconstruct_with_pinn")],
        namespace=f"{namespace}.{view}.{split}",
        prefix_datasets_with_namespace=False,
        tags=["training", namespace, view],
    )


def create_pipeline(study: StudyDesign, training_data: str = "regime") -> Pipeline:
    """One ``train_pinn`` job per (dose, view) and one ``reconstruct_with_pinn`` job per (dose, view, split).

    A gridsize-2 view's network trains on the view's train positions (``training_data``
    'view') or on groups in its regime drawn from the whole train split ('regime').
    """
    reference = gs1_reference_view(study)
    jobs = []
    for namespace, dose in dose_namespaces(study):
        for view, spec in study.views.items():
            jobs.append(_train_pipeline(namespace, dose, view, spec.gridsize > 1 and training_data == "regime"))
            gs1_view = reference if spec.gridsize > 1 else None
            jobs += [_inference_pipeline(namespace, dose, view, split, gs1_view) for split in SPLITS]
    histories = {f"{namespace}.{view}": f"{namespace}.{view}.training_history"
                 for namespace, _ in dose_namespaces(study) for view in study.views}
    curves = Node(figures.plot_training_curves, histories, "training_curves_figure", name="plot_training_curves",
                  tags=["training"])
    return sum(jobs, Pipeline([])) + Pipeline([curves])
