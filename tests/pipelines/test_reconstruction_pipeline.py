"""Reconstruction wiring, the missing-input check, and `kedro run --pipeline reconstruction --env test`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kedro.io import DataCatalog, Version
from kedro_project import (
    TEST_DATA,
    config_loader,
    latest_version,
    project_parameters,
    project_pipelines,
    run_kedro,
)

from fly64_kedro.datasets import NPZDataset
from fly64_kedro.input_check import missing_inputs_message
from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.reconstruction import ReconstructionParams
from fly64_kedro.parameters.study import SPLITS
from fly64_kedro.pipelines.reconstruction import create_pipeline
from fly64_kedro.pipelines.reconstruction.nodes import SELECTION_FIELDS

STUDY = StudyDesign.model_validate({
    "doses": [1e3, 1e4], "patch_size": 32, "neighbor_count": 7, "root_seed": 1,
    "views": {"baseline": {}, "dense": {"overlap_fraction": 0.7, "gridsize": 2},
              "sparse": {"overlap_fraction": 0.2, "gridsize": 2}},
})
TRUTH_DATASETS = {"ground_truth", "truth_patches"}


def test_every_environment_gives_valid_reconstruction_parameters() -> None:
    """The quick default, the test and the paper settings differ only in conf, and all validate."""
    settings = {env: ReconstructionParams.model_validate(project_parameters(env)["reconstruction"])
                for env in ("base", "test", "paper")}
    assert settings["base"].engines == ["lsqml"] and settings["base"].device == "cpu"
    assert settings["paper"].engines == ["lsqml", "epie", "dm"] and settings["paper"].device == "cuda"
    epochs = {env: value.options["lsqml"].num_epochs for env, value in settings.items()}
    assert epochs["test"] < epochs["base"] < epochs["paper"] == 100
    assert settings["base"].options["lsqml"].noise_model == "poisson"
    assert settings["paper"].options["lsqml"].batch_size == 96


def test_one_namespaced_job_per_cell_and_engine_then_the_aggregates() -> None:
    engines = ["lsqml", "dm"]
    pipeline = create_pipeline(STUDY, engines)
    jobs = [node for node in pipeline.nodes if node.namespace]
    cells = {f"dose_{int(dose)}.{view}.{split}" for dose in STUDY.doses for view in STUDY.views for split in SPLITS}
    assert {node.name for node in jobs} == {f"{cell}.{engine}" for cell in cells for engine in engines}
    for node in jobs:
        engine = node.name.rsplit(".", 1)[1]
        assert node.inputs == [f"{node.namespace}.scan_view", "params:reconstruction", "params:study"]
        assert node.outputs == [f"{node.namespace}.{engine}_object", f"{node.namespace}.{engine}_record"]
        assert engine in node.tags
    selected = pipeline.only_nodes_with_namespaces(["dose_1000.sparse"])
    assert sorted(node.name for node in selected.nodes) == [
        "dose_1000.sparse.test.dm", "dose_1000.sparse.test.lsqml", "dose_1000.sparse.train.dm",
        "dose_1000.sparse.train.lsqml"]
    assert {node.name for node in pipeline.only_nodes_with_tags("dm").nodes} == {f"{cell}.dm" for cell in cells}
    (summary,) = [node for node in pipeline.nodes if not node.namespace]
    assert set(summary.inputs) == {"params:reconstruction", "params:study"} | {
        f"{cell}.{engine}_record" for cell in cells for engine in engines}
    assert summary.outputs == ["reconstruction_manifest", "reconstruction_skip_summary"]


def test_no_reconstruction_node_reads_the_ground_truth() -> None:
    """Only scan views (and the job records) flow in; truth datasets exist upstream but never here."""
    registered = project_pipelines("paper")  # every engine
    produced = registered["__default__"].all_outputs()
    assert TRUTH_DATASETS <= produced | registered["__default__"].inputs()
    for node in registered["reconstruction"].nodes:
        data_inputs = {name for name in node.inputs if not name.startswith("params:")}
        assert not data_inputs & TRUTH_DATASETS
        assert all(name.endswith((".scan_view", "_record")) for name in data_inputs), node.name


def test_missing_inputs_name_the_datasets_and_the_commands(project_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registered = project_pipelines("test", project_copy)
    monkeypatch.chdir(project_copy)  # catalog filepaths are relative to the project
    catalog = DataCatalog.from_config(config_loader("test", project_copy)["catalog"])
    message = missing_inputs_message(registered["reconstruction"], catalog, registered, "test")
    assert message.startswith("18 input dataset(s) of this run do not exist yet:")
    assert ("  - dose_1000.baseline.test.scan_view (data/test/04_feature/dose_1000/baseline/test/scan_view.npz): "
            "made by the 'selection' pipeline") in message
    assert "… and 12 more" in message
    assert "Make them first: kedro run --pipelines simulation,selection --env test" in message
    selection = missing_inputs_message(registered["selection"], catalog, registered, None)
    assert "made by the 'simulation' pipeline" in selection and "kedro run --pipelines simulation\n" in selection
    assert missing_inputs_message(registered["simulation"], catalog, registered, "test") is None


def _replace_view(project: Path, job: str, change: Any) -> dict[str, Any]:
    """Save a new (latest) version of a job's scan view, changed by ``change(view)``; return it."""
    dose, view, split = job.split(".")
    dataset = NPZDataset(filepath=str(project / f"data/test/04_feature/{dose}/{view}/{split}/scan_view.npz"),
                         version=Version(None, None))
    payload = dataset.load()
    change(payload)
    dataset.save(payload)
    return payload


def _keep_first(n_kept: int) -> Any:
    def change(view: dict[str, Any]) -> None:
        n = view["ycoords"].size
        for key in ("diffraction", "ycoords", "xcoords", "scan_index"):
            view[key] = view[key][:n_kept]
        view["_metadata"].update(n_accepted=n_kept, n_rejected=view["_metadata"]["n_rejected"] + n - n_kept,
                                 sufficient_for={**view["_metadata"]["sufficient_for"], "iterative": n_kept >= 2})
    return change


def _overflow(view: dict[str, Any]) -> None:
    """The same data with the brightest pixel at 1e38 counts: float32 overflow inside LSQML."""
    factor = np.float32(1e38) / view["diffraction"].max() ** 2
    view["diffraction"] = view["diffraction"] * np.sqrt(factor)
    view["intensity_scale"] = np.asarray(view["intensity_scale"] * factor)


def _json(path: Path) -> dict[str, Any]:
    return json.loads(latest_version(path).read_text())


@pytest.mark.e2e
def test_reconstruction_run_records_skips_and_failures_and_goes_on(project_copy: Path) -> None:
    run_kedro(project_copy, "run", "--pipelines", "simulation,selection", "--env", "test")
    _replace_view(project_copy, "dose_1000.sparse.train", _keep_first(1))
    _replace_view(project_copy, "dose_1000.sparse.test", _keep_first(2))
    _replace_view(project_copy, "dose_10000.sparse.train", _overflow)
    run_kedro(project_copy, "run", "--pipeline", "reconstruction", "--env", "test")

    outputs = project_copy / TEST_DATA / "07_model_output"
    reporting = project_copy / TEST_DATA / "08_reporting"
    manifest = _json(reporting / "reconstruction_manifest.json")
    summary = _json(reporting / "reconstruction_skip_summary.json")
    assert manifest["totals"] == {"ok": 16, "failed": 1, "skipped": 1, "jobs": 18}
    assert [(e["job"], e["failure_category"]) for e in summary["skipped"]] == [("dose_1000.sparse.train",
                                                                                "too_few_positions")]
    assert "1 position(s)" in summary["skipped"][0]["reason"]
    assert [(e["job"], e["failure_category"]) for e in summary["failed"]] == [("dose_10000.sparse.train",
                                                                               "numerical_failure")]
    assert re.match(r"NonFiniteResultError: the loss became (nan|inf) in epoch 0", summary["failed"][0]["reason"])

    for record in manifest["jobs"]:
        dose, view, split = record["job"].split(".")
        folder = outputs / dose / view / split
        assert _json(folder / "lsqml_record.json") == record
        scan_view = NPZDataset(filepath=str(project_copy / f"data/test/04_feature/{dose}/{view}/{split}/scan_view.npz"),
                               version=Version(None, None)).load()
        assert {name: record[name] for name in SELECTION_FIELDS} == {
            name: scan_view["_metadata"][name] for name in SELECTION_FIELDS}
        assert record["input_dataset"]["version"] == scan_view["_metadata"]["_loaded_from"]["version"]
        assert record["n_positions"] == scan_view["ycoords"].size
        obj = np.load(latest_version(folder / "lsqml_object.npz"))
        metadata = json.loads(str(obj["_metadata"]))
        assert metadata["status"] == record["status"]
        if record["status"] == "ok":
            assert record["epochs_completed"] == 3 and record["reason"] is None
            assert list(obj["object"].shape) == record["canvas_shape"] and np.isfinite(obj["object"]).all()
            assert np.isfinite(obj["loss_history"]).all() and record["final_loss"] == obj["loss_history"][-1]
        else:
            assert obj["object"].shape == (0, 0)
    baseline = next(r for r in manifest["jobs"] if r["view"] == "baseline")
    assert baseline["selection_strategy"] == "all" and baseline["device"].startswith("cpu")

    # a filtered run writes records for its jobs only, and no aggregate
    before = {path: len(list(path.iterdir())) for path in outputs.glob("*/*/*/lsqml_record.json")}
    run_kedro(project_copy, "run", "--pipeline", "reconstruction", "--env", "test", "--namespaces", "dose_1000.sparse")
    grown = sorted(str(path.relative_to(outputs).parent) for path, n in before.items() if len(list(path.iterdir())) > n)
    assert grown == ["dose_1000/sparse/test", "dose_1000/sparse/train"]
    assert len(list((reporting / "reconstruction_manifest.json").iterdir())) == 1


@pytest.mark.e2e
def test_a_fresh_checkout_says_what_is_missing_and_how_to_make_it(project_copy: Path) -> None:
    result = run_kedro(project_copy, "run", "--pipeline", "reconstruction", "--env", "test", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "dose_1000.baseline.test.scan_view" in output
    assert "kedro run --pipelines simulation,selection --env test" in output
    assert "Traceback" not in output
