"""DaskRunner: refuses in-memory hand-offs, runs on a distributed cluster, equals the sequential runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from distributed import LocalCluster
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline
from kedro_datasets.json import JSONDataset
from kedro_project import TEST_DATA, latest_version, make_project_copy, run_kedro

from fly64_kedro.runners import DaskRunner, InMemoryHandoffError
from fly64_kedro.runners.dask_runner import SCHEDULER_ENV_VAR

# Threads in this process keep the in-process tests fast; the e2e test below uses the test
# environment's 2-worker LocalCluster of processes, where nodes and catalog are pickled as on a cluster.
IN_PROCESS_CLUSTER = {"dask": {"local_cluster": {"n_workers": 2, "threads_per_worker": 1, "processes": False}}}


def scale(numbers: list[float], factor: float) -> list[float]:
    return [factor * value for value in numbers]


def total(numbers: list[float]) -> float:
    return float(sum(numbers))


def refuse_negative(numbers: list[float]) -> list[float]:
    bad = [value for value in numbers if value < 0]
    if bad:
        raise ValueError(f"negative values {bad}")
    return numbers


def _catalog(tmp_path: Path, numbers: list[float], *persisted: str) -> DataCatalog:
    """``numbers`` saved to disk, ``persisted`` names as JSON files, the factor and runner settings in memory."""
    datasets = {name: JSONDataset(filepath=str(tmp_path / f"{name}.json")) for name in ("numbers", *persisted)}
    datasets["params:factor"] = MemoryDataset(3.0)
    datasets["params:runner"] = MemoryDataset(IN_PROCESS_CLUSTER)
    catalog = DataCatalog(datasets=datasets)
    catalog.save("numbers", numbers)
    return catalog


SCALE = Node(scale, ["numbers", "params:factor"], "scaled", name="scale_numbers")
CHECK = Node(refuse_negative, "numbers", "scaled", name="check_numbers")


def _then_total(first: Node) -> Pipeline:
    return Pipeline([first, Node(total, "scaled", "total", name="sum_scaled")])


def test_in_memory_handoff_is_refused_naming_the_dataset(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, [1.0, 2.0], "total")  # 'scaled' is not registered: a MemoryDataset

    with pytest.raises(InMemoryHandoffError) as refused:
        DaskRunner().run(_then_total(SCALE), catalog)

    message = str(refused.value)
    assert "'scaled': written by node 'scale_numbers', read by 'sum_scaled'" in message
    assert "params:factor" not in message  # parameters are in memory too, but sent by value
    assert "persisted" in message and "catalog" in message
    assert not (tmp_path / "total.json").exists()  # refused before any node ran


def test_pipeline_runs_on_the_scheduler_named_by_the_environment(tmp_path: Path, monkeypatch) -> None:
    catalog = _catalog(tmp_path, [1.0, 2.0, 4.5], "scaled", "total")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        monkeypatch.setenv(SCHEDULER_ENV_VAR, cluster.scheduler_address)
        DaskRunner().run(_then_total(SCALE), catalog)
        prefixes = set(cluster.scheduler.task_prefixes)

    assert json.loads((tmp_path / "scaled.json").read_text()) == [3.0, 6.0, 13.5]  # the parameter arrived
    assert json.loads((tmp_path / "total.json").read_text()) == 22.5
    assert {"scale_numbers", "sum_scaled"} <= prefixes  # ran as tasks on that cluster


def test_failing_node_stops_the_run_with_its_own_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(SCHEDULER_ENV_VAR, raising=False)  # → the LocalCluster of params:runner
    catalog = _catalog(tmp_path, [1.0, -2.0], "scaled", "total")

    with pytest.raises(ValueError, match=r"negative values \[-2.0\]"):
        DaskRunner().run(_then_total(CHECK), catalog)

    assert not (tmp_path / "scaled.json").exists()
    assert not (tmp_path / "total.json").exists()


def _npz_outputs(project: Path) -> dict[str, Path]:
    """Latest version of every versioned NPZ dataset under the project's data/, by relative path."""
    data = project / TEST_DATA
    return {str(folder.relative_to(data)): latest_version(folder) for folder in data.rglob("*.npz") if folder.is_dir()}


@pytest.mark.e2e
@pytest.mark.parametrize("pipeline", ["simulation"])  # pipelines whose inputs they produce themselves
def test_dask_run_equals_sequential_run(tmp_path: Path, pipeline: str) -> None:
    sequential = make_project_copy(tmp_path / "sequential")
    distributed = make_project_copy(tmp_path / "dask")
    run_kedro(sequential, "run", "--env", "test", "--pipelines", pipeline)
    run_kedro(distributed, "run", "--env", "test", "--pipelines", pipeline, "--runner", "fly64_kedro.runners.DaskRunner")

    expected, found = _npz_outputs(sequential), _npz_outputs(distributed)
    assert expected and sorted(found) == sorted(expected)
    for name, path in expected.items():
        with np.load(path) as want, np.load(found[name]) as got:
            arrays = [key for key in want.files if key != "_metadata"]
            assert sorted(got.files) == sorted(want.files), name
            for key in arrays:
                np.testing.assert_array_equal(got[key], want[key], err_msg=f"{name}: {key}")

    record_folder = distributed / TEST_DATA / "08_reporting" / "run_provenance.json"
    record = json.loads(latest_version(record_folder).read_text())
    assert record["status"] == "ok" and record["nodes_not_run"] == []
    assert record["run_params"]["runner"].startswith("DaskRunner(")
    # every node ran, with its hooks, in a worker process and not in the driver
    assert all(node["pid"] != record["environment"]["pid"] for node in record["nodes"])
