"""Run provenance: per-node records merged into one versioned record, under any runner."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io import DataCatalog, MemoryDataset, Version
from kedro.pipeline import Node, Pipeline
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.partitions import PartitionedDataset
from kedro_project import (
    TEST_DATA,
    latest_version,
    project_parameters,
    project_pipelines,
    run_kedro,
)

from fly64_kedro.hooks import (
    NODE_RECORDS,
    PROVENANCE_PACKAGES,
    RUN_RECORD,
    ProvenanceHooks,
    _git_state,
)


def _registered_nodes(project: Path, env: str, pipeline: str) -> dict[str, Node]:
    """The nodes of a registered pipeline as the project's ``--env`` builds it."""
    return {node.name: node for node in project_pipelines(env, project)[pipeline].nodes}


def _assert_contains(recorded: Any, configured: Any, where: str = "parameters") -> None:
    """Every configured value appears unchanged in the record (which may add pydantic defaults)."""
    if isinstance(configured, dict):
        for key, value in configured.items():
            assert key in recorded, f"{where}.{key} missing from the record"
            _assert_contains(recorded[key], value, f"{where}.{key}")
    elif isinstance(configured, (list, tuple)):
        assert len(recorded) == len(configured), where
        for index, (got, want) in enumerate(zip(recorded, configured)):
            _assert_contains(got, want, f"{where}[{index}]")
    else:
        assert recorded == configured, f"{where}: recorded {recorded!r}, configured {configured!r}"


@pytest.mark.e2e
def test_provenance_record_under_parallel_runner(project_copy: Path) -> None:
    run_kedro(project_copy, "run", "--env", "test", "--pipelines", "simulation", "--runner", "ParallelRunner")

    path = latest_version(project_copy / TEST_DATA / "08_reporting" / "run_provenance.json")
    record = json.loads(path.read_text())
    run_id = path.parent.name
    assert record["run_id"] == run_id and record["status"] == "ok" and record["error"] is None
    assert record["command"][1:] == ["run", "--env", "test", "--pipelines", "simulation", "--runner", "ParallelRunner"]
    assert record["run_params"]["pipeline_names"] == ["simulation"]
    _assert_contains(record["parameters"], project_parameters("test", project_copy))

    environment = record["environment"]
    assert environment["kedro_env"] == "test"
    assert environment["python"] == platform.python_version()
    assert environment["cpu_count"] == os.cpu_count()
    assert environment["hostname"] == platform.node()
    assert record["packages"] == {name: importlib.metadata.version(name) for name in PROVENANCE_PACKAGES}
    assert record["git"] is None  # the project copy is not a git repository

    expected = _registered_nodes(project_copy, "test", "simulation")
    assert [node["node"] for node in record["nodes"]] == list(expected)  # all, in topological order
    assert record["nodes_not_run"] == []
    versioned_files = [p for p in (project_copy / TEST_DATA).rglob("*")  # <name>/<run id>/<name>
                       if p.is_file() and p.parent.name == run_id and p.parent.parent.name == p.name]
    recorded_outputs = 0
    for node in record["nodes"]:
        assert node["status"] == "ok"
        assert 0 < node["compute_seconds"] <= node["seconds"]
        assert node["pid"] != environment["pid"]  # ran, with its hooks, in a worker process
        assert set(node["outputs"]) == set(expected[node["node"]].outputs)
        assert set(node["outputs"].values()) == {run_id}  # every output is versioned by the run
        assert set(node["inputs"]) == set(expected[node["node"]].inputs)
        recorded_outputs += len(node["outputs"])
    assert recorded_outputs == len(versioned_files) - 1  # every dataset file of the run, but the record itself
    assert record["node_seconds_total"] == pytest.approx(sum(node["seconds"] for node in record["nodes"]))
    node_files = sorted(p.stem for p in (project_copy / TEST_DATA / "08_reporting" / "run_provenance_nodes" / run_id).iterdir())
    assert node_files == sorted(expected)


def double(numbers: list[float]) -> list[float]:
    return [2 * value for value in numbers]


def refuse_large(numbers: list[float], limit: float) -> list[float]:
    if max(numbers) > limit:
        raise ValueError(f"value {max(numbers)} above the limit {limit}")
    return numbers


def test_failed_run_records_the_failing_node_and_the_nodes_not_run(tmp_path: Path) -> None:
    run_id = "2026-01-02T03.04.05.678Z"
    catalog = DataCatalog(datasets={
        "numbers": JSONDataset(filepath=str(tmp_path / "numbers.json")),
        "doubled": JSONDataset(filepath=str(tmp_path / "doubled.json"), version=Version(None, run_id)),
        "checked": JSONDataset(filepath=str(tmp_path / "checked.json")),
        "params:limit": MemoryDataset(5.0),
        "parameters": MemoryDataset({"limit": 5.0}),
        f"{NODE_RECORDS}.{run_id}": PartitionedDataset(path=str(tmp_path / "nodes" / run_id),
                                                       dataset="json.JSONDataset", filename_suffix=".json"),
        RUN_RECORD: JSONDataset(filepath=str(tmp_path / "run.json"), version=Version(None, run_id)),
    })
    catalog.save("numbers", [1.0, 3.0])
    pipeline = Pipeline([
        Node(double, "numbers", "doubled", name="double"),
        Node(refuse_large, ["doubled", "params:limit"], "checked", name="check"),
        Node(double, "checked", "final", name="double_again"),
    ])
    hook_manager = _create_hook_manager()
    hook_manager.register(ProvenanceHooks())
    run_params = {"run_id": run_id, "project_path": str(tmp_path), "env": "unit"}

    # the calls KedroSession.run makes around a runner
    hook_manager.hook.before_pipeline_run(run_params=run_params, pipeline=pipeline, catalog=catalog)
    with pytest.raises(ValueError, match="above the limit") as failure:
        SequentialRunner().run(pipeline, catalog, hook_manager, run_id=run_id)
    hook_manager.hook.on_pipeline_error(error=failure.value, run_params=run_params, pipeline=pipeline, catalog=catalog)

    record = json.loads((tmp_path / "run.json" / run_id / "run.json").read_text())
    assert record["status"] == "failed" and "value 6.0 above the limit 5.0" in record["error"]
    assert record["parameters"] == {"limit": 5.0}
    assert record["environment"]["kedro_env"] == "unit"
    first, failed = record["nodes"]
    assert first["node"] == "double" and first["status"] == "ok"
    assert first["outputs"] == {"doubled": run_id} and first["inputs"] == {"numbers": None}
    assert failed["node"] == "check" and failed["status"] == "failed" and "above the limit" in failed["error"]
    assert failed["inputs"] == {"doubled": run_id, "params:limit": None}
    assert record["nodes_not_run"] == ["double_again"]


def test_git_state_names_the_commit_and_whether_tracked_files_changed(tmp_path: Path) -> None:
    assert _git_state(str(tmp_path)) is None  # not a repository
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "tracked.txt").write_text("one")
    subprocess.run([*git, "add", "tracked.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], check=True)
    head = (tmp_path / ".git" / "HEAD").read_text().split()[-1]  # ref: refs/heads/<branch>
    commit = (tmp_path / ".git" / head).read_text().strip()

    assert _git_state(str(tmp_path)) == {"commit": commit, "dirty": False}
    (tmp_path / "untracked.txt").write_text("ignored")
    assert _git_state(str(tmp_path))["dirty"] is False
    (tmp_path / "tracked.txt").write_text("two")
    assert _git_state(str(tmp_path)) == {"commit": commit, "dirty": True}
