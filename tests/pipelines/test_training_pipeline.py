"""Training nodes, wiring, parameters and `kedro run --pipeline training --env test` end to end."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from contract_payloads import selection_telemetry
from kedro_project import PROJECT_ROOT
from pydantic import ValidationError

from fly64_kedro.contracts import InputDataError, Measurements, ObjectEstimate, ScanView
from fly64_kedro.datasets import TorchCheckpointDataset
from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.study import Cell
from fly64_kedro.parameters.training import TrainingParams
from fly64_kedro.physics.geometry import canvas_for_positions
from fly64_kedro.pinn.inference import UNCOVERED_FILL
from fly64_kedro.pinn.network import from_checkpoint
from fly64_kedro.pipelines.training import create_pipeline
from fly64_kedro.pipelines.training.nodes import reconstruct_with_pinn, train_pinn
from fly64_kedro.provenance import add_stage

sys.path.insert(0, str(PROJECT_ROOT / "tests" / "pinn"))
from pinn_support import one_torch_thread, synthetic_scan, training_params

N = 16
STUDY = StudyDesign.model_validate({
    "doses": [1e3, 1e5],
    "patch_size": N,
    "views": {
        "baseline": {"overlap_fraction": None, "gridsize": 1},
        "dense": {"overlap_fraction": 0.5, "gridsize": 2},
        "sparse": {"overlap_fraction": 0.0, "gridsize": 2},
    },
    "neighbor_count": 7,
    "root_seed": 3,
})
pytestmark = pytest.mark.usefixtures(one_torch_thread.__name__)
PARAMS = training_params(max_epochs=2, batch_size=8, groups_per_anchor=2, canvas_margin_px=3, data="view",
                         gridsize2_start="random", network={"width": 4, "n_blocks": 2})
"""Every network from a fresh initialisation, on its view's own positions (the tests of a start network set it)."""


def scan_view_payload(view: str, split: str, n_positions: int = 40, **telemetry: Any) -> dict[str, Any]:
    """A scan-view payload as the selection writes it (diffraction = sqrt(counts))."""
    scan = synthetic_scan(patch_size=N, object_size=64, n_positions=n_positions, dose=1e5,
                          seed=0 if split == "train" else 1)
    gridsize = STUDY.views[view].gridsize
    fields = selection_telemetry(n_positions, dose=1e5, view=view, split=split, gridsize=gridsize,
                                 min_positions={"iterative": 2, "pinn": gridsize**2},
                                 sufficient_for={"iterative": n_positions >= 2, "pinn": n_positions >= gridsize**2})
    return {
        "diffraction": np.sqrt(scan.counts).astype(np.float32), "ycoords": scan.ycoords, "xcoords": scan.xcoords,
        "scan_index": np.arange(n_positions), "probeGuess": scan.probe,
        "intensity_scale": np.array(scan.intensity_scale),
        "_metadata": add_stage(None, "selection", {**fields, **telemetry}),
    }


def scan_view(view: str, split: str, n_positions: int = 40, **telemetry: Any) -> ScanView:
    """The ``ScanView`` the catalog loads for that payload."""
    return ScanView.from_payload(scan_view_payload(view, split, n_positions, **telemetry),
                                 f"dose_100000.{view}.{split}.scan_view")


def _train(view: str, data: Measurements | None = None, params: TrainingParams = PARAMS,
           start_model: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    data = data if data is not None else scan_view(view, "train")
    return train_pinn(data, STUDY, params, start_model, cell=Cell(1e5, view))


def _infer(view_data: ScanView, model: dict[str, Any], gs1_model: dict[str, Any] | None = None,
           ) -> dict[str, Any]:
    cell = Cell(1e5, view_data.telemetry.view, "test")
    return reconstruct_with_pinn(view_data, model, STUDY, PARAMS, gs1_model, cell=cell)


def _saved_and_loaded(checkpoint: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    dataset = TorchCheckpointDataset(filepath=str(tmp_path / f"{len(list(tmp_path.iterdir()))}.pt"))
    dataset.save(checkpoint)
    return dataset.load()


# ---------------------------------------------------------------- wiring


def test_one_training_per_dose_and_view_one_inference_per_split() -> None:
    pipeline = create_pipeline(STUDY, PARAMS.model_copy(update={"data": "regime", "gridsize2_start": "gs1"}))
    train = [n for n in pipeline.nodes if n.name.endswith("train_pinn")]
    infer = [n for n in pipeline.nodes if n.name.endswith("reconstruct_with_pinn")]
    assert sorted(n.namespace for n in train) == sorted(f"dose_{d}.{v}" for d in (1000, 100000) for v in STUDY.views)
    assert len(infer) == 2 * 3 * 2
    dense = next(n for n in infer if n.namespace == "dose_1000.dense.test")
    assert dense.inputs == ["dose_1000.dense.test.scan_view", "dose_1000.dense.pinn_model", "params:study",
                            "params:training", "dose_1000.baseline.pinn_model"]
    assert sorted(dense.outputs) == ["dose_1000.dense.test.pinn_gs1_object", "dose_1000.dense.test.pinn_object",
                                     "dose_1000.dense.test.pinn_record"]
    baseline = next(n for n in infer if n.namespace == "dose_1000.baseline.train")
    assert "dose_1000.baseline.train.pinn_gs1_object" not in baseline.outputs
    # in the view's regime a gridsize-2 network trains on the whole train split, never on the test split
    # starting from the same dose's gridsize-1 network
    sparse = next(n for n in train if n.namespace == "dose_100000.sparse")
    assert sparse.inputs == ["dose_100000.train.measurements", "params:study", "params:training",
                             "dose_100000.baseline.pinn_model"]
    baseline_train = next(n for n in train if n.namespace == "dose_100000.baseline")
    assert baseline_train.inputs == ["dose_100000.baseline.train.scan_view", "params:study", "params:training"]
    own_view = next(n for n in create_pipeline(STUDY, PARAMS).nodes if n.name == "dose_100000.sparse.train_pinn")
    assert own_view.inputs == ["dose_100000.sparse.train.scan_view", "params:study", "params:training"]
    assert "training_curves_figure" in pipeline.all_outputs()
    # the network never sees the truth, nor a test split while training
    assert not {"ground_truth", "truth_patches"} & set(pipeline.inputs())
    assert not any("test" in name for node in train for name in node.inputs)


# ---------------------------------------------------------------- nodes


def test_train_then_reconstruct_on_the_shared_canvas(tmp_path: Path) -> None:
    checkpoint, history = _train("baseline")
    assert checkpoint["status"] == "ok" and history["status"] == "ok"
    assert len(history["train_loss"]) == len(history["validation_loss"]) == history["epochs_run"] == 2
    assert history["n_positions"] == 40 and history["gridsize"] == 1
    assert history["n_groups"] == 36 and history["n_validation_positions"] == 4  # whole positions held out
    assert history["throughput_patterns_per_s"] > 0 and history["runtime_s"] > 0 and history["peak_rss_mb"] > 0
    assert [e["stage"] for e in checkpoint["metadata"]["provenance"]] == ["selection", "training"]
    loaded = _saved_and_loaded(checkpoint, tmp_path)

    test_view = scan_view("baseline", "test")
    outputs = _infer(test_view, loaded)
    assert set(outputs) == {"object", "record"}
    obj, record = outputs["object"], outputs["record"]
    origin, shape = canvas_for_positions(test_view.ycoords, test_view.xcoords, N, PARAMS.canvas_margin_px)
    assert obj.object.shape == shape and obj.object.dtype == np.complex64
    np.testing.assert_array_equal(obj.canvas_origin_yx, origin)
    assert obj.ok and record["status"] == "ok" and record["reason"] is None
    assert record["n_positions"] == 40 and record["canvas_shape"] == list(shape)
    throughput = record["throughput_patterns_per_s"]
    assert throughput["predict"] >= throughput["predict_and_stitch"] > 0
    # the stored object is the probe-intensity-weighted average of the predicted patches (a plain loop as reference)
    model = from_checkpoint(loaded, "cpu")
    with torch.no_grad():
        patches = model.object_patches(torch.from_numpy(test_view.diffraction[:, None]))[:, 0].numpy()
    weight = np.abs(test_view.probe) ** 2 / (np.abs(test_view.probe) ** 2).max()
    total, count = np.zeros(shape, np.complex128), np.zeros(shape)
    for patch, y, x in zip(patches, test_view.ycoords - origin[0], test_view.xcoords - origin[1], strict=True):
        top, left = int(y) - N // 2, int(x) - N // 2
        total[top:top + N, left:left + N] += weight * patch
        count[top:top + N, left:left + N] += weight
    np.testing.assert_allclose(obj.coverage, count, rtol=1e-5, atol=1e-6)
    lit = count >= PARAMS.stitch_min_weight
    expected = np.where(lit, total / np.maximum(count, PARAMS.stitch_min_weight), UNCOVERED_FILL)
    np.testing.assert_allclose(obj.object, expected, rtol=0, atol=1e-4)


def test_gridsize_two_view_also_runs_the_gridsize_one_network(tmp_path: Path) -> None:
    gs1 = _saved_and_loaded(_train("baseline")[0], tmp_path)
    gs2, history = _train("dense")
    assert history["gridsize"] == 2 and history["n_groups"] == 36 * 2 and history["training_data"] == "view"
    outputs = _infer(scan_view("dense", "test"), _saved_and_loaded(gs2, tmp_path), gs1)
    assert set(outputs) == {"object", "gs1_object", "record"}
    record = outputs["record"]
    assert record["gridsize"] == 2 and record["gs1"]["gridsize"] == 1
    assert record["gs1"]["model"] == "dose_100000.baseline.pinn_model" and record["gs1"]["status"] == "ok"
    gs1_object, gs2_object = outputs["gs1_object"], outputs["object"]
    np.testing.assert_array_equal(gs1_object.canvas_origin_yx, gs2_object.canvas_origin_yx)
    assert gs1_object.object.shape == gs2_object.object.shape
    assert not np.array_equal(gs1_object.object, gs2_object.object)


def test_a_gridsize_two_network_starts_from_the_gridsize_one_network(tmp_path: Path) -> None:
    """With ``gridsize2_start: gs1`` the gridsize-2 network holds the gridsize-1 weights before it fine-tunes: at a
    vanishing learning rate it ends where it started; a skipped start network skips it with the reason."""
    gs1 = _saved_and_loaded(_train("baseline")[0], tmp_path)
    still = PARAMS.model_copy(update={"gridsize2_start": "gs1", "fine_tune_epochs": 1, "learning_rate": 1e-12,
                                      "lr_min": 0.0})
    gs2, history = _train("dense", params=still, start_model=gs1)
    assert history["status"] == "ok" and history["started_from"] == "dose_100000.baseline.pinn_model"
    assert history["epochs_run"] == 1 and gs2["config"]["gridsize"] == 2
    for name, weights in gs1["state_dict"].items():
        torch.testing.assert_close(gs2["state_dict"][name], weights, rtol=1e-6, atol=1e-7, msg=name)
    skipped = {**gs1, "status": "skipped", "reason": "3 position(s)"}
    checkpoint, history = _train("dense", params=still, start_model=skipped)
    assert checkpoint["status"] == "skipped"
    assert history["reason"] == "the network it starts from, dose_100000.baseline.pinn_model, is skipped: 3 position(s)"
    with pytest.raises(InputDataError, match=r"'dose_100000.baseline.pinn_model', field 'config.gridsize'"):
        _train("dense", params=still, start_model=gs2)  # a gridsize-2 network is no start


def test_regime_training_draws_spaced_groups_from_the_whole_train_split() -> None:
    measurements = Measurements.from_payload(scan_view_payload("dense", "train", n_positions=120),
                                             "dose_100000.train.measurements")  # every train position of a split
    regime = PARAMS.model_copy(update={"data": "regime"})
    checkpoint, history = _train("dense", measurements, regime)
    assert checkpoint["status"] == "ok" and history["training_data"] == "regime"
    assert history["regime_spacing_px"] == STUDY.spacing_threshold("dense")
    assert history["training_dataset"] == "dose_100000.train.measurements"
    assert history["n_groups"] > 40  # far more groups than a spaced view of the split would hold


def test_too_small_views_are_skipped_with_a_reason_and_the_run_goes_on(tmp_path: Path) -> None:
    checkpoint, history = _train("sparse", scan_view("sparse", "train", n_positions=3))
    assert checkpoint["status"] == history["status"] == "skipped"
    assert checkpoint["reason"] == "the selection marked this view insufficient for the PINN (3 positions)"
    three = Measurements.from_payload(scan_view_payload("sparse", "train", n_positions=3), "measurements")
    regime, _ = _train("sparse", three, PARAMS.model_copy(update={"data": "regime"}))  # no selection flags
    assert regime["status"] == "skipped" and regime["reason"] == "3 position(s); a gridsize-2 group needs 4"

    outputs = _infer(scan_view("sparse", "test"), _saved_and_loaded(checkpoint, tmp_path))
    obj, record = outputs["object"], outputs["record"]
    assert isinstance(obj, ObjectEstimate)
    assert obj.object.shape == (0, 0) and obj.object.dtype == np.complex64
    assert obj.status == record["status"] == "skipped"
    assert "dose_100000.sparse.pinn_model is skipped: the selection marked" in record["reason"]

    trained = _saved_and_loaded(_train("dense")[0], tmp_path)
    few = _infer(scan_view("dense", "test", n_positions=2), trained)["record"]
    assert few["status"] == "skipped" and few["reason"] == "2 position(s); a gridsize-2 group needs 4"


def test_bad_input_names_the_dataset_and_field() -> None:
    payload = scan_view_payload("baseline", "train")
    payload["diffraction"][0, 0, 0] = np.nan
    with pytest.raises(InputDataError, match="dataset 'dose_100000.baseline.train.scan_view', field 'diffraction'"):
        ScanView.from_payload(payload, "dose_100000.baseline.train.scan_view")
    mismatched = scan_view("dense", "train", gridsize=1)  # selected under another study design
    with pytest.raises(InputDataError, match=r"'dose_100000.dense.train.scan_view', field '_metadata.gridsize': "
                                             r"expected 2 \(study.views.dense.gridsize\)"):
        _train("dense", mismatched, PARAMS)


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize("env", ["test", "paper"])
def test_every_environment_validates(env: str) -> None:
    def values(path: Path) -> dict[str, Any]:
        return yaml.safe_load(path.read_text())["training"] if path.exists() else {}

    base = values(PROJECT_ROOT / "conf/base/parameters_training.yml")
    override = values(PROJECT_ROOT / f"conf/{env}/parameters_training.yml")
    merged = {**base, **override, "network": {**base["network"], **override.get("network", {})}}
    assert TrainingParams.model_validate(merged).max_epochs > 0


@pytest.mark.parametrize(("change", "message"), [
    ({"device": "gpu"}, "String should match pattern"),
    ({"lr_min": 1.0}, "lr_min (1.0) must not exceed learning_rate"),
    ({"validation_fraction": 0.5}, "less than 0.5"),
    ({"loss": "mse"}, "'poisson' or 'mae'"),
    ({"max_epochs": 0}, "greater than 0"),
    ({"data": "all"}, "'view' or 'regime'"),
])
def test_bad_parameters_are_refused(change: dict[str, Any], message: str) -> None:
    values = PARAMS.model_dump() | change
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TrainingParams.model_validate(values)
