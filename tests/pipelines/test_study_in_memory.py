"""The whole study wired in memory: the registered pipelines, a DataCatalog of MemoryDatasets, SequentialRunner.

Every stage's nodes run on the test environment's sizes with two doses and every pty-chi
engine, so the wiring (names, contracts, the method registry, the engines' arms in the
comparison) is checked without a subprocess or a file. The `kedro run` end-to-end tests
keep what only the CLI shows: versioned files, hooks, the lock, the environments.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_project import project_parameters

from fly64_kedro.contracts import Measurements, ObjectEstimate, ScanView
from fly64_kedro.methods import study_methods
from fly64_kedro.metrics.score import expected_metrics
from fly64_kedro.parameters import validate_parameters
from fly64_kedro.parameters.study import SPLITS, Cell
from fly64_kedro.pipeline_registry import create_pipelines
from fly64_kedro.reconstruction.engines import ENGINES

DOSES = [1e3, 1e4]


class KeptInMemory(MemoryDataset):
    """A MemoryDataset the runner cannot release: the test reads every intermediate after the run."""

    def _release(self) -> None:
        pass


def study_parameters() -> dict[str, Any]:
    """The test environment's parameters with two doses, every engine, two epochs each."""
    raw = project_parameters("test")
    reconstruction = raw["reconstruction"]
    return {**raw, "study": {**raw["study"], "doses": DOSES},
            "reconstruction": {**reconstruction, "engines": "all",
                               "options": {name: {**options, "num_epochs": 2}
                                           for name, options in reconstruction["options"].items()}}}


@pytest.fixture(scope="module")
def study() -> tuple[dict[str, Any], DataCatalog]:
    """(validated parameters, the catalog after running ``__default__`` in memory)."""
    raw = study_parameters()
    parameters = validate_parameters(raw)
    pipeline = create_pipelines(raw)["__default__"]
    assert {name for name in pipeline.inputs() if not name.startswith("params:")} == set()  # nothing from outside
    catalog = DataCatalog({**{name: KeptInMemory() for name in pipeline.datasets()},
                           **{f"params:{name}": MemoryDataset(value) for name, value in parameters.items()}})
    SequentialRunner().run(pipeline, catalog)
    return parameters, catalog


def test_every_stage_hands_on_its_contract(study) -> None:
    parameters, catalog = study
    assert isinstance(catalog.load("dose_10000.test.measurements"), Measurements)
    for cell in parameters["study"].cells():
        view = catalog.load(cell.dataset("scan_view"))
        assert isinstance(view, ScanView) and view.telemetry.view == cell.view and view.telemetry.split == cell.split
        for method in ("pinn", *ENGINES):
            estimate = catalog.load(cell.dataset(f"{method}_object"))
            assert isinstance(estimate, ObjectEstimate), (cell, method)


def test_every_engine_is_an_arm_of_every_cell(study) -> None:
    parameters, catalog = study
    assert parameters["reconstruction"].engines == list(ENGINES)  # "all"
    methods = study_methods(parameters["study"], parameters["reconstruction"].engines)
    metrics = catalog.load("metrics_table")
    assert isinstance(metrics, pd.DataFrame)
    cells = list(parameters["study"].cells())
    assert len(metrics) == len(cells) * len(methods) * len(expected_metrics(parameters["comparison"]))
    assert set(metrics["method"]) == {method.name for method in methods}
    manifest = catalog.load("reconstruction_manifest")
    assert manifest["totals"]["jobs"] == len(cells) * len(ENGINES)
    assert set(manifest["totals_by_engine"]) == set(ENGINES)
    markdown = catalog.load("study_summary_markdown")
    for engine in ENGINES:
        assert f"pinn − {engine} phase ms_ssim" in markdown


def test_selection_telemetry_travels_and_positions_do_not_depend_on_the_dose(study) -> None:
    parameters, catalog = study
    table = catalog.load("selection_table")
    assert len(table) == len(DOSES) * len(parameters["study"].views) * len(SPLITS)
    report = catalog.load("selection_report")
    assert len(report["rows"]) == len(table)
    for view in parameters["study"].views:
        for split in SPLITS:
            kept = [catalog.load(Cell(dose, view, split).dataset("scan_view")) for dose in DOSES]
            source = catalog.load(Cell(DOSES[0]).dataset(f"{split}.measurements"))
            telemetry = kept[0].telemetry
            assert telemetry.n_accepted == kept[0].n_positions
            assert telemetry.n_accepted + telemetry.n_rejected == source.n_positions
            assert np.isin(kept[0].scan_index, source.scan_index).all()
            for other in kept[1:]:  # the same positions at every dose
                np.testing.assert_array_equal(other.scan_index, kept[0].scan_index)
            assert kept[0].metadata["provenance"][-1]["stage"] == "selection"


def test_every_network_trains_and_reconstructs_its_cells(study) -> None:
    parameters, catalog = study
    design = parameters["study"]
    for network in design.network_cells():
        history = catalog.load(network.dataset("training_history"))
        checkpoint = catalog.load(network.dataset("pinn_model"))
        assert checkpoint["status"] == history["status"] == "ok", network
        assert history["stop_reason"] in ("converged", "max_epochs") and history["best_epoch"] >= 1
        assert len(history["validation_loss"]) == history["epochs_run"]
    for cell in design.cells():
        record = catalog.load(cell.dataset("pinn_record"))
        estimate = catalog.load(cell.dataset("pinn_object"))
        assert record["status"] == estimate.status == "ok" and list(estimate.object.shape) == record["canvas_shape"]
        assert np.isfinite(estimate.object).all() and record["throughput_patterns_per_s"]["predict_and_stitch"] > 0
        gridsize_two = design.views[cell.view].gridsize > 1
        assert (cell.dataset("pinn_gs1_object") in catalog) == gridsize_two  # the gs1 network on gs2 views
        if gridsize_two:
            assert record["gs1"]["status"] == "ok"
    assert catalog.load("training_curves_figure").axes
