"""Training nodes, wiring, parameters and `kedro run --pipeline training --env test` end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from kedro.io.core import Version
from kedro_project import PROJECT_ROOT, latest_version, run_kedro
from pydantic import ValidationError

from fly64_kedro.datasets import NPZDataset, TorchCheckpointDataset
from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.training import TrainingParams
from fly64_kedro.physics.geometry import canvas_for_positions
from fly64_kedro.pinn.inference import UNCOVERED_FILL
from fly64_kedro.pinn.network import from_checkpoint
from fly64_kedro.pipelines.training import create_pipeline
from fly64_kedro.pipelines.training.nodes import reconstruct_with_pinn, train_pinn
from fly64_kedro.provenance import add_stage
from fly64_kedro.validation import InputDataError

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
                         network={"width": 4, "n_blocks": 2})


def scan_view(view: str, split: str, n_positions: int = 40, **metadata: Any) -> dict[str, Any]:
    """A scan-view payload as the selection writes it (diffraction = sqrt(counts))."""
    scan = synthetic_scan(patch_size=N, object_size=64, n_positions=n_positions, dose=1e5,
                          seed=0 if split == "train" else 1)
    fields = {"view": view, "split": split, "gridsize": STUDY.views[view].gridsize, **metadata}
    return {
        "diffraction": np.sqrt(scan.counts).astype(np.float32), "ycoords": scan.ycoords, "xcoords": scan.xcoords,
        "scan_index": np.arange(n_positions), "probeGuess": scan.probe,
        "intensity_scale": np.array(scan.intensity_scale), "_metadata": add_stage(None, "selection", fields),
    }


def _train(view: str, payload: dict[str, Any] | None = None, params: TrainingParams = PARAMS,
           ) -> tuple[dict[str, Any], dict[str, Any]]:
    return train_pinn(payload if payload is not None else scan_view(view, "train"), STUDY, params,
                      dose=1e5, view=view)


def _saved_and_loaded(checkpoint: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    dataset = TorchCheckpointDataset(filepath=str(tmp_path / f"{len(list(tmp_path.iterdir()))}.pt"))
    dataset.save(checkpoint)
    return dataset.load()


# ---------------------------------------------------------------- wiring


def test_one_training_per_dose_and_view_one_inference_per_split() -> None:
    pipeline = create_pipeline(STUDY)
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
    sparse = next(n for n in train if n.namespace == "dose_100000.sparse")
    assert sparse.inputs == ["dose_100000.train.measurements", "params:study", "params:training"]
    baseline_train = next(n for n in train if n.namespace == "dose_100000.baseline")
    assert baseline_train.inputs == ["dose_100000.baseline.train.scan_view", "params:study", "params:training"]
    own_view = next(n for n in create_pipeline(STUDY, "view").nodes if n.name == "dose_100000.sparse.train_pinn")
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
    outputs = reconstruct_with_pinn(test_view, loaded, STUDY, PARAMS, dose=1e5, view="baseline", split="test")
    assert set(outputs) == {"object", "record"}
    obj, record = outputs["object"], outputs["record"]
    origin, shape = canvas_for_positions(test_view["ycoords"], test_view["xcoords"], N, PARAMS.canvas_margin_px)
    assert obj["object"].shape == shape and obj["object"].dtype == np.complex64
    np.testing.assert_array_equal(obj["canvas_origin_yx"], origin)
    assert obj["_metadata"]["status"] == "ok" and record["status"] == "ok" and record["reason"] is None
    assert record["n_positions"] == 40 and record["canvas_shape"] == list(shape)
    throughput = record["throughput_patterns_per_s"]
    assert throughput["predict"] >= throughput["predict_and_stitch"] > 0
    # the stored object is the probe-intensity-weighted average of the predicted patches (a plain loop as reference)
    model = from_checkpoint(loaded, "cpu")
    with torch.no_grad():
        patches = model.object_patches(torch.from_numpy(test_view["diffraction"][:, None]))[:, 0].numpy()
    weight = np.abs(test_view["probeGuess"]) ** 2 / (np.abs(test_view["probeGuess"]) ** 2).max()
    total, count = np.zeros(shape, np.complex128), np.zeros(shape)
    for patch, y, x in zip(patches, test_view["ycoords"] - origin[0], test_view["xcoords"] - origin[1], strict=True):
        top, left = int(y) - N // 2, int(x) - N // 2
        total[top:top + N, left:left + N] += weight * patch
        count[top:top + N, left:left + N] += weight
    np.testing.assert_allclose(obj["coverage"], count, rtol=1e-5, atol=1e-6)
    lit = count >= PARAMS.stitch_min_weight
    expected = np.where(lit, total / np.maximum(count, PARAMS.stitch_min_weight), UNCOVERED_FILL)
    np.testing.assert_allclose(obj["object"], expected, rtol=0, atol=1e-4)


def test_gridsize_two_view_also_runs_the_gridsize_one_network(tmp_path: Path) -> None:
    gs1 = _saved_and_loaded(_train("baseline")[0], tmp_path)
    gs2, history = _train("dense")
    assert history["gridsize"] == 2 and history["n_groups"] == 36 * 2 and history["training_data"] == "view"
    outputs = reconstruct_with_pinn(scan_view("dense", "test"), _saved_and_loaded(gs2, tmp_path), STUDY, PARAMS,
                                    gs1, dose=1e5, view="dense", split="test", gs1_view="baseline")
    assert set(outputs) == {"object", "gs1_object", "record"}
    record = outputs["record"]
    assert record["gridsize"] == 2 and record["gs1"]["gridsize"] == 1
    assert record["gs1"]["model"] == "dose_100000.baseline.pinn_model" and record["gs1"]["status"] == "ok"
    np.testing.assert_array_equal(outputs["gs1_object"]["canvas_origin_yx"], outputs["object"]["canvas_origin_yx"])
    assert outputs["gs1_object"]["object"].shape == outputs["object"]["object"].shape
    assert not np.array_equal(outputs["gs1_object"]["object"], outputs["object"]["object"])


def test_regime_training_draws_spaced_groups_from_the_whole_train_split() -> None:
    measurements = scan_view("dense", "train", n_positions=120)  # every train position of a split
    regime = PARAMS.model_copy(update={"data": "regime"})
    checkpoint, history = _train("dense", measurements, regime)
    assert checkpoint["status"] == "ok" and history["training_data"] == "regime"
    assert history["regime_spacing_px"] == STUDY.spacing_threshold("dense")
    assert history["training_dataset"] == "dose_100000.train.measurements"
    assert history["n_groups"] > 40  # far more groups than a spaced view of the split would hold


def test_too_small_views_are_skipped_with_a_reason_and_the_run_goes_on(tmp_path: Path) -> None:
    checkpoint, history = _train("sparse", scan_view("sparse", "train", n_positions=3))
    assert checkpoint["status"] == history["status"] == "skipped"
    assert checkpoint["reason"] == "3 position(s); a gridsize-2 group needs 4"
    flagged, _ = _train("dense", scan_view("dense", "train", sufficient_for={"lsqml": True, "pinn": False}))
    assert flagged["status"] == "skipped" and "insufficient for the PINN" in flagged["reason"]

    outputs = reconstruct_with_pinn(scan_view("sparse", "test"), _saved_and_loaded(checkpoint, tmp_path), STUDY,
                                    PARAMS, dose=1e5, view="sparse", split="test")
    obj, record = outputs["object"], outputs["record"]
    assert obj["object"].shape == (0, 0) and obj["object"].dtype == np.complex64
    assert obj["_metadata"]["status"] == record["status"] == "skipped"
    assert "dose_100000.sparse.pinn_model is skipped: 3 position(s)" in record["reason"]

    trained = _saved_and_loaded(_train("dense")[0], tmp_path)
    few = reconstruct_with_pinn(scan_view("dense", "test", n_positions=2), trained, STUDY, PARAMS,
                                dose=1e5, view="dense", split="test")["record"]
    assert few["status"] == "skipped" and few["reason"] == "2 position(s); a gridsize-2 group needs 4"


def test_bad_input_names_the_dataset_and_field() -> None:
    payload = scan_view("baseline", "train")
    payload["diffraction"][0, 0, 0] = np.nan
    with pytest.raises(InputDataError, match="dataset 'dose_100000.baseline.train.scan_view', field 'diffraction'"):
        _train("baseline", payload)
    mismatched = scan_view("dense", "train")
    mismatched["_metadata"]["gridsize"] = 1
    with pytest.raises(InputDataError, match=r"field '_metadata.gridsize': expected 2 \(study.views.dense.gridsize\)"):
        _train("dense", mismatched)


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


# ---------------------------------------------------------------- end to end


def _replace_view(project: Path, job: str, n_kept: int) -> None:
    """A new latest version of a job's scan view holding its first ``n_kept`` positions."""
    dose, view, split = job.split(".")
    dataset = NPZDataset(filepath=str(project / f"data/test/04_feature/{dose}/{view}/{split}/scan_view.npz"),
                         version=Version(None, None))
    payload = dataset.load()
    for key in ("diffraction", "ycoords", "xcoords", "scan_index"):
        payload[key] = payload[key][:n_kept]
    payload["_metadata"]["sufficient_for"]["pinn"] = n_kept >= payload["_metadata"]["gridsize"] ** 2
    dataset.save(payload)


@pytest.mark.e2e
def test_training_run_writes_models_objects_and_records(project_copy: Path) -> None:
    run_kedro(project_copy, "run", "--pipelines", "simulation,selection", "--env", "test")
    _replace_view(project_copy, "dose_1000.sparse.train", 3)
    run_kedro(project_copy, "run", "--pipeline", "training", "--env", "test", "--params", "training.data=view")

    data = project_copy / "data" / "test"
    models, outputs = data / "06_models", data / "07_model_output"
    for dose in ("dose_1000", "dose_10000", "dose_100000"):
        for view in ("baseline", "dense", "sparse"):
            checkpoint = torch.load(latest_version(models / dose / view / "pinn_model.pt"), weights_only=True)
            history = json.loads(latest_version(models / dose / view / "training_history.json").read_text())
            skipped = (dose, view) == ("dose_1000", "sparse")
            assert checkpoint["status"] == history["status"] == ("skipped" if skipped else "ok")
            for split in ("train", "test"):
                folder = outputs / dose / view / split
                record = json.loads(latest_version(folder / "pinn_record.json").read_text())
                obj = np.load(latest_version(folder / "pinn_object.npz"))
                assert json.loads(str(obj["_metadata"]))["status"] == record["status"]
                if skipped:
                    assert record["status"] == "skipped" and obj["object"].shape == (0, 0)
                    continue
                assert record["status"] == "ok" and list(obj["object"].shape) == record["canvas_shape"]
                assert np.isfinite(obj["object"]).all() and np.abs(obj["object"]).max() > 0
                assert record["throughput_patterns_per_s"]["predict_and_stitch"] > 0
                assert (folder / "pinn_gs1_object.npz").exists() == (view != "baseline")
                if view != "baseline":
                    assert record["gs1"]["status"] == "ok"
            if not skipped:
                assert history["stop_reason"] in ("converged", "max_epochs") and history["best_epoch"] >= 1
                assert len(history["validation_loss"]) == history["epochs_run"]
    assert latest_version(data / "08_reporting" / "training_curves.png").stat().st_size > 0
