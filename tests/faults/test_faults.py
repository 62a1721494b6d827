"""The fault suite: every bad input is caught where it enters, with a message that names it.

Each test feeds one fault and asserts the message (the dataset or parameter, what was
expected, what was found). The faults that a run must survive or refuse as a whole (a
second run on the same data, a killed run's leftovers, another environment's outputs,
the README's own recipe) run ``kedro`` on a copy of the project and also check that the data
directory holds nothing new that claims success.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from contract_payloads import selection_telemetry
from kedro.io.core import DatasetError
from kedro_project import (
    kedro_env,
    latest_version,
    project_parameters,
    readme_recipes,
    run_kedro,
)

from fly64_kedro import run_lock
from fly64_kedro.contracts import GroundTruth, InputDataError, ScanView
from fly64_kedro.datasets import NPZDataset, TorchCheckpointDataset
from fly64_kedro.parameters import ParameterError, validate_parameters
from fly64_kedro.parameters.study import USER_GROUND_TRUTH, Cell, dose_namespace
from fly64_kedro.pipelines.reconstruction.nodes import reconstruct_view
from fly64_kedro.pipelines.training.nodes import train_pinn

BASE = project_parameters()


def _with(section: str, **values: object) -> dict:
    return {**BASE, section: {**BASE[section], **values}}


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize(("raw", "named", "phrase"), [
    (_with("study", doses=[1e3, float("inf")]), "study.doses", "finite number > 0"),
    (_with("study", doses=[1e3, 1e3]), "study.doses", "must be distinct"),
    (_with("study", views={**BASE["study"]["views"], "my.view": {"gridsize": 1}}), "study.views", "identifier"),
    (_with("study", views={**BASE["study"]["views"], "test": {"gridsize": 1}}), "study.views", "identifier"),
    ({**BASE, "lsqm": {"num_epochs": 1}}, "lsqm", "unknown parameter section; known sections: study,"),
    (_with("reconstruction", canvas_margin=1), "reconstruction.canvas_margin", "Extra inputs are not permitted"),
    (_with("reconstruction", engines=["lsqml", "pie"]), "reconstruction.engines", "unknown engine(s) ['pie']; known:"),
    (_with("reconstruction", engines=["lsqml", "lsqml"]), "reconstruction.engines", "must be distinct"),
    (_with("reconstruction", options={**BASE["reconstruction"]["options"], "lsqml": {"num_epoch": 1}}),
     "reconstruction.options", "lsqml.num_epoch: Extra inputs are not permitted"),
])
def test_bad_parameters_name_the_parameter(raw: dict, named: str, phrase: str) -> None:
    with pytest.raises(ParameterError) as info:
        validate_parameters(raw)
    line = next(line for line in info.value.message.splitlines() if line.strip().startswith(named))
    assert phrase in line, info.value.message


def test_doses_get_namespaces_that_keep_their_value() -> None:
    doses = [1000.0, 1000.4, 0.3, 1e5]
    assert [dose_namespace(dose) for dose in doses] == ["dose_1000", "dose_1000p4", "dose_0p3", "dose_100000"]
    validate_parameters(_with("study", doses=doses))  # distinct doses, distinct namespaces: valid


@pytest.mark.e2e
def test_a_parameter_error_is_one_line_without_a_traceback(project_copy: Path) -> None:
    result = run_kedro(project_copy, "run", "--env", "test", "--params", "lsqm.num_epochs=1", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Error: invalid parameters:\n  lsqm: unknown parameter section; known sections:" in output, output[-2000:]
    assert "Traceback" not in output
    assert not list((project_copy / "data").rglob("*.npz"))


# ---------------------------------------------------------------- files


def _npz_dataset(tmp_path: Path, content: bytes) -> NPZDataset:
    path = tmp_path / "measurements.npz"
    path.write_bytes(content)
    return NPZDataset(filepath=str(path))


def _npy_bytes() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ones(4))
    return buffer.getvalue()


@pytest.mark.parametrize(("content", "phrase"), [
    (os.urandom(256), "not an NPZ archive (256 bytes that are not a complete zip archive"),
    (b"", "not an NPZ archive (an empty file"),
    (_npy_bytes(), "not an NPZ archive"),
])
def test_a_file_that_is_not_an_npz_is_named(tmp_path: Path, content: bytes, phrase: str) -> None:
    dataset = _npz_dataset(tmp_path, content)
    with pytest.raises(DatasetError) as info:
        dataset.load()
    assert phrase in str(info.value) and str(tmp_path / "measurements.npz") in str(info.value)


def test_metadata_that_is_not_json_is_named(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, xcoords=np.zeros(3), _metadata=np.array("{not json"))
    with pytest.raises(DatasetError, match=r"measurements\.npz'?: field '_metadata' must be JSON text"):
        _npz_dataset(tmp_path, buffer.getvalue()).load()


def test_a_truncated_checkpoint_is_called_truncated(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    torch.save({"format": "x", "state_dict": {"w": torch.ones(1000)}}, buffer)
    path = tmp_path / "pinn_model.pt"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    assert not zipfile.is_zipfile(path)
    with pytest.raises(DatasetError, match="the checkpoint is truncated or corrupt"):
        TorchCheckpointDataset(filepath=str(path)).load()


def test_an_object_too_small_for_the_scan_states_the_minimum() -> None:
    payload = {"objectGuess": np.ones((33, 200), np.complex64), "probeGuess": np.ones((32, 32), np.complex64)}
    with pytest.raises(InputDataError) as info:
        GroundTruth.from_payload(payload, USER_GROUND_TRUTH).checked_for(32, USER_GROUND_TRUTH)
    message = str(info.value)
    assert f"dataset '{USER_GROUND_TRUTH}', field 'objectGuess'" in message
    assert "at least 2N = 64 px" in message and "shape (33, 200)" in message


# ---------------------------------------------------------------- measurements


def _view(n: int = 12, counts: float = 4.0) -> ScanView:
    """A baseline scan view of n positions on a grid, every pixel holding ``counts`` photons."""
    grid = np.meshgrid(np.arange(40.0, 40.0 + 12 * 4, 12), np.arange(40.0, 40.0 + 12 * 3, 12), indexing="ij")
    y, x = (g.ravel()[:n] for g in grid)
    return ScanView.from_payload({
        "diffraction": np.full((n, 32, 32), np.sqrt(counts), np.float32), "ycoords": y, "xcoords": x,
        "scan_index": np.arange(n), "probeGuess": np.ones((32, 32), np.complex64),
        "intensity_scale": np.array(1.0), "_metadata": selection_telemetry(n, view="baseline"),
    }, "dose_1000.baseline.test.scan_view")


def test_a_view_without_photons_is_a_reasoned_record_in_training_and_reconstruction() -> None:
    models = validate_parameters(project_parameters("test"))
    empty = _view(counts=0.0)
    _, history = train_pinn(empty, models["study"], models["training"], cell=Cell(1e3, "baseline"))
    assert history["status"] == "skipped" and "hold no photons" in history["reason"]
    _, record = reconstruct_view(empty, models["reconstruction"], models["study"], cell=Cell(1e3, "baseline", "test"),
                                 engine="lsqml")
    assert record["status"] == "failed" and record["failure_category"] == "no_photons"
    assert "hold no photons" in record["reason"]


# ---------------------------------------------------------------- runs that must not mix


def _versions(folder: Path) -> set[Path]:
    """Every versioned file under ``folder``."""
    return {path for path in folder.rglob("*") if path.is_file() and path.parent.name.count("T") == 1
            and path.parent.name[:4].isdigit()}


@pytest.mark.e2e
def test_a_second_run_on_the_same_data_directory_stops_at_once(project_copy: Path) -> None:
    data = project_copy / "data" / "test"
    holder = {"run_id": "holding-run", "command": ["kedro", "run", "--env", "test"], "pid": os.getpid(),
              "host": "this-host", "started_at": "2026-01-01T00:00:00+00:00"}
    lock = run_lock.acquire(data, holder)
    try:
        result = run_kedro(project_copy, "run", "--env", "test", "--pipeline", "simulation", check=False)
    finally:
        run_lock.release(lock)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "is in use by run holding-run (`kedro run --env test`" in output and f"pid {os.getpid()}" in output
    assert not _versions(data)


@pytest.mark.e2e
def test_a_stale_lock_is_taken_over_and_environments_keep_their_outputs_apart(project_copy: Path) -> None:
    data = project_copy / "data" / "test"
    data.mkdir(parents=True, exist_ok=True)
    (data / run_lock.LOCK_NAME).write_text(json.dumps({"run_id": "killed-run", "command": ["kedro", "run"],
                                                        "pid": 999999, "started_at": "yesterday"}))
    result = run_kedro(project_copy, "run", "--env", "test", "--pipeline", "simulation")
    assert "Taking over a stale run lock" in result.stdout + result.stderr and "killed-run" in result.stdout
    assert (data / run_lock.LOCK_NAME).read_text() == ""  # a finished run leaves no holder
    assert latest_version(data / "01_raw" / "ground_truth.npz").exists()
    base_layers = [project_copy / "data" / layer for layer in ("01_raw", "02_intermediate", "03_primary")]
    assert not any(_versions(layer) for layer in base_layers if layer.exists())  # base's data/ untouched


@pytest.mark.e2e
def test_outputs_of_another_run_are_refused_with_the_command_that_fixes_it(project_copy: Path) -> None:
    """A run killed after simulation (seed 7) leaves newer measurements; selection with seed 42 refuses them."""
    run_kedro(project_copy, "run", "--env", "test", "--pipelines", "simulation,selection")
    run_kedro(project_copy, "run", "--env", "test", "--pipeline", "simulation", "--params", "study.root_seed=7")
    data = project_copy / "data" / "test"
    before = _versions(data / "04_feature")
    result = run_kedro(project_copy, "run", "--env", "test", "--pipeline", "selection", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "do not come from one run" in output and "params:study" in output
    assert "(root_seed 42)" in output and "(root_seed 7)" in output
    assert "kedro run --to-nodes" in output and "--env test" in output
    assert _versions(data / "04_feature") == before  # nothing new that claims success
    records = [json.loads(path.read_text()) for path in _versions(data / "08_reporting") if path.name ==
               "run_provenance.json"]
    assert sorted(record["status"] for record in records) == ["failed", "ok", "ok"]


# ---------------------------------------------------------------- the README recipe, as written


@pytest.mark.e2e
def test_the_readme_ground_truth_recipe_runs_as_written(project_copy: Path) -> None:
    recipes = readme_recipes()
    assert {"python", "conf/local/parameters.yml", "conf/local/catalog.yml"} <= set(recipes)
    subprocess.run([sys.executable, "-c", recipes["python"]], cwd=project_copy, env=kedro_env(), check=True)
    for name in ("conf/local/parameters.yml", "conf/local/catalog.yml"):
        (project_copy / name).write_text(recipes[name])
    user_file = project_copy / yaml.safe_load(recipes["conf/local/catalog.yml"])["user_ground_truth"]["filepath"]
    run_kedro(project_copy, "run", "--pipeline", "simulation")
    written = NPZDataset(filepath=str(latest_version(project_copy / "data" / "01_raw" / "ground_truth.npz"))).load()
    with np.load(user_file) as user:
        np.testing.assert_array_equal(written["objectGuess"], user["objectGuess"])
        np.testing.assert_array_equal(written["probeGuess"], user["probeGuess"])
    assert written["_metadata"]["lineage"]["ancestors"]["user_ground_truth"]  # the file's content fingerprint
    # the same recipe in an environment that does not read conf/local stops instead of synthesizing
    (project_copy / "conf" / "test" / "parameters_user.yml").write_text(recipes["conf/local/parameters.yml"])
    result = run_kedro(project_copy, "run", "--env", "test", "--pipeline", "simulation", check=False)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "ground_truth.source is 'catalog'" in output and "has no 'user_ground_truth' entry" in output
    assert "conf/local is read only by runs without --env" in output
    assert not (project_copy / "data" / "test" / "01_raw" / "ground_truth.npz").exists()
