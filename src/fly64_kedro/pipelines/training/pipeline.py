"""Training wiring: ``dose_1000.dense`` trains, ``dose_1000.dense.test`` predicts and stitches.

A gridsize-2 view's network starts, by default, from the trained gridsize-1 network of the same
dose (``training.gridsize2_start``), so its job waits for that one.

Every view with gridsize > 1 is also reconstructed by the gridsize-1 network of the same
dose (trained on the study's gs1 reference view, ``baseline`` by default): ``pinn_gs1_object``.
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.study import Cell
from fly64_kedro.parameters.training import TrainingParams
from fly64_kedro.pipelines.jobs import bind_job
from fly64_kedro.pipelines.training import figures, nodes


def _train_pipeline(cell: Cell, study: StudyDesign, training: TrainingParams) -> Pipeline:
    _, data = nodes.training_data(cell, study, training.data)
    start = nodes.start_network(cell, study, training)
    inputs = [data, "params:study", "params:training", *([start] if start else [])]
    return Pipeline(
        [Node(bind_job(nodes.train_pinn, cell=cell), inputs,
              [cell.dataset("pinn_model"), cell.dataset("training_history")], name="train_pinn")],
        namespace=cell.namespace,
        prefix_datasets_with_namespace=False,
        tags=["training", cell.dose_namespace, cell.view],
    )


def _inference_pipeline(cell: Cell, study: StudyDesign) -> Pipeline:
    network = Cell(cell.dose, cell.view)
    inputs = [cell.dataset("scan_view"), network.dataset("pinn_model"), "params:study", "params:training"]
    outputs = {"object": cell.dataset("pinn_object"), "record": cell.dataset("pinn_record")}
    if study.views[cell.view].gridsize > 1:
        inputs.append(network.with_view(study.gs1_reference_view).dataset("pinn_model"))
        outputs["gs1_object"] = cell.dataset("pinn_gs1_object")
    return Pipeline(
        [Node(bind_job(nodes.reconstruct_with_pinn, cell=cell), inputs, outputs, name="reconstruct_with_pinn")],
        namespace=cell.namespace,
        prefix_datasets_with_namespace=False,
        tags=["training", cell.dose_namespace, cell.view],
    )


def create_pipeline(study: StudyDesign, training: TrainingParams) -> Pipeline:
    """One ``train_pinn`` job per (dose, view) and one ``reconstruct_with_pinn`` job per (dose, view, split).

    A gridsize-2 view's network trains on the view's train positions (``training.data``
    'view') or on groups in its regime drawn from the whole train split ('regime'), starting
    from the gridsize-1 network of the same dose (``training.gridsize2_start`` 'gs1') or from
    scratch; it also gets the gridsize-1 network of the study's gs1 reference view run on its
    positions.
    """
    jobs = [_train_pipeline(cell, study, training) for cell in study.network_cells()]
    jobs += [_inference_pipeline(cell, study) for cell in study.cells()]
    histories = {str(cell): cell.dataset("training_history") for cell in study.network_cells()}
    curves = Node(figures.plot_training_curves, histories, "training_curves_figure", name="plot_training_curves",
                  tags=["training"])
    return sum(jobs, Pipeline([])) + Pipeline([curves])
