"""Kedro hooks of the project."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from kedro.framework.hooks import hook_impl
from kedro.io import CatalogProtocol
from kedro.io.core import AbstractVersionedDataset
from kedro.pipeline import Node, Pipeline
from pydantic import BaseModel

from fly64_kedro import lineage, run_lock
from fly64_kedro.records import package_versions

NODE_RECORDS = "run_provenance_nodes"  # catalog factory "<this>.{run_id}": one JSON file per node of a run
RUN_RECORD = "run_provenance"  # catalog entry: the merged, versioned record of a run
PROVENANCE_PACKAGES = ("kedro", "kedro-datasets", "ptychi", "torch", "numpy", "scipy", "dask", "distributed",
                       "fly64_kedro")


class GridHooks:
    """Hands the run's config loader (with its ``--env``) to the pipeline registry."""

    @hook_impl
    def after_context_created(self, context) -> None:
        from fly64_kedro.pipeline_registry import use_config_loader

        use_config_loader(context.config_loader)


class RunLockHooks:
    """One run at a time per data directory (``fly64_kedro.run_lock``): taken first, released last."""

    def __init__(self) -> None:
        self._data_root: Path | None = None
        self._held: run_lock.RunLock | None = None

    @hook_impl
    def after_context_created(self, context) -> None:
        self._data_root = data_root(context.config_loader, context.project_path)

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        self._let_go()  # a session of this process that ended without its after-run hooks
        if self._data_root is None:
            return
        holder = {"run_id": run_params.get("run_id"), "command": list(sys.argv), "pid": os.getpid(),
                  "host": socket.gethostname(), "started_at": _utc_now(), "env": run_params.get("env")}
        self._held = run_lock.acquire(self._data_root, holder)

    @hook_impl(trylast=True)
    def after_pipeline_run(self) -> None:
        self._let_go()

    @hook_impl(trylast=True)
    def on_pipeline_error(self) -> None:
        self._let_go()

    def _let_go(self) -> None:
        if self._held is not None:
            run_lock.release(self._held)
            self._held = None


def data_root(config_loader: Any, project_path: Path) -> Path | None:
    """The run's data directory (``globals.data_root``, relative to the project), None when remote."""
    root = str(config_loader["globals"].get("data_root", "data"))
    if "://" in root:
        return None
    path = Path(root)
    return path if path.is_absolute() else Path(project_path) / path


class LineageError(click.ClickException):
    """A node's inputs do not belong to one lineage (``fly64_kedro.lineage``)."""


class LineageHooks:
    """Checks before every node that its inputs belong together, and records every output's lineage.

    The check names each conflicting input with its version, the ancestor or parameter section
    they disagree on, and the command that makes them consistent. Lineage is written into every
    dict payload's ``_metadata`` (NPZ arrays, JSON records, checkpoints); tables and figures are
    end products that no node reads.
    """

    def __init__(self) -> None:
        self._pending: dict[str, tuple[dict[str, lineage.Lineage], dict[str, Any]]] = {}
        self._env: str | None = None

    @hook_impl
    def after_context_created(self, context) -> None:
        self._env = context.env

    @hook_impl
    def before_node_run(self, node: Node, catalog: CatalogProtocol, inputs: dict[str, Any]) -> None:
        params = {name.removeprefix("params:"): value for name, value in inputs.items() if name.startswith("params:")}
        datasets = {name: lineage.lineage_of(value, name) for name, value in inputs.items()
                    if not name.startswith("params:") and name != "parameters"}
        conflicts = lineage.find_conflicts(datasets, params)
        if conflicts:
            raise LineageError(self._message(node, catalog, datasets, params, conflicts))
        self._pending[node.name] = (datasets, params)

    @hook_impl
    def after_node_run(self, node: Node, outputs: dict[str, Any], run_id: str) -> None:
        datasets, params = self._pending.pop(node.name, ({}, {}))
        for name, payload in outputs.items():
            lineage.with_lineage(payload, lineage.derive(node.name, name, datasets, params, run_id))

    @hook_impl
    def on_node_error(self, node: Node) -> None:
        self._pending.pop(node.name, None)

    def _message(self, node: Node, catalog: CatalogProtocol, datasets: dict[str, lineage.Lineage],
                 params: dict[str, Any], conflicts: list[lineage.Conflict]) -> str:
        """The conflicts that explain the others (parameters, then the most upstream datasets) and the fix."""
        env = f" --env {self._env}" if self._env and self._env != "local" else ""
        param_conflicts = [c for c in conflicts if c.subject.startswith("params:")]
        roots = _upstream_most([c for c in conflicts if not c.subject.startswith("params:")])
        shown = param_conflicts + roots
        lines = [f"the inputs of node '{node.name}' do not come from one run:"]
        seeds = {name: item.root_seed for name, item in datasets.items()}
        seeds["this run"] = getattr(params.get("study"), "root_seed", None)
        for conflict in shown:
            claims = []
            for value, holders in conflict.claims.items():
                seed = seeds.get(holders[0]) if conflict.subject == "params:study" else None
                claims.append(f"{_holders(catalog, holders)} {'have' if len(holders) > 1 else 'has'} {value}"
                              + (f" (root_seed {seed})" if seed is not None else ""))
            lines.append(f"  {conflict.subject}: {'; '.join(claims)}")
        if len(conflicts) > len(shown):
            lines.append(f"  ({len(conflicts) - len(shown)} datasets derived from these differ as well)")
        if param_conflicts:
            lines.append(f"Make them consistent: rerun everything this node needs with one set of parameters, "
                         f"e.g. kedro run --to-nodes {node.name}{env} (with the --params you intend), or run it "
                         f"with the parameters its inputs were made with.")
        else:
            subjects = ",".join(conflict.subject for conflict in roots)
            lines.append(f"Make them consistent: kedro run --from-inputs {subjects}{env}")
        lines.append("(A run that pins versions with --load-versions must pin versions that belong together.)")
        return "\n".join(lines)


def _holders(catalog: CatalogProtocol, holders: list[str], most: int = 3) -> str:
    """Inputs with their versions ('this run' for the node's own parameters), at most ``most`` of them."""
    named = [holder if holder == "this run" else f"{holder} (version {_load_version(catalog, holder) or '-'})"
             for holder in holders[:most]]
    return ", ".join(named) + (f" and {len(holders) - most} more" if len(holders) > most else "")


def _upstream_most(conflicts: list[lineage.Conflict]) -> list[lineage.Conflict]:
    """The conflicting datasets none of whose upstream datasets (in the registered pipelines) conflicts too."""
    from kedro.framework.project import pipelines

    default = pipelines.get("__default__")
    if default is None:
        return conflicts
    subjects = {conflict.subject for conflict in conflicts}
    produced = default.all_outputs()

    def upstream(name: str) -> set[str]:
        if name not in produced:
            return set()
        part = default.to_outputs(name)
        return (part.all_inputs() | part.all_outputs()) - {name}

    return [conflict for conflict in conflicts if not (upstream(conflict.subject) & subjects)]


@dataclass
class _NodeInFlight:
    """A node's record waiting for its outputs to be saved, and where to write it."""

    record: dict[str, Any]
    catalog: CatalogProtocol
    run_id: str
    unsaved: set[str]


class ProvenanceHooks:
    """Run provenance: one record per node, merged into ``run_provenance`` at the end of a run.

    Node hooks run wherever the node runs (the driver for the sequential and thread runners, a
    worker process for ``ParallelRunner`` and ``DaskRunner``), so each node writes its own small
    record through the catalog factory ``run_provenance_nodes.{run_id}`` (one JSON file per node,
    a folder per run). ``after_pipeline_run`` (or ``on_pipeline_error``) runs in the driver: it
    reads the run's records, adds the run-level facts and saves the versioned ``run_provenance``.

    A node's ``seconds`` span the load of its first input to the save of its last output;
    ``compute_seconds`` the node function alone.
    """

    def __init__(self) -> None:
        self._started: dict[str, tuple[float, str]] = {}  # node → (perf_counter, UTC time) of its first event
        self._computing: dict[str, float] = {}  # node → perf_counter when its function was called
        self._in_flight: dict[str, _NodeInFlight] = {}
        self._run_started: tuple[float, str] | None = None

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._run_started = (time.perf_counter(), _utc_now())

    @hook_impl
    def before_dataset_loaded(self, node: Node) -> None:
        self._started.setdefault(node.name, (time.perf_counter(), _utc_now()))

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        self._started.setdefault(node.name, (time.perf_counter(), _utc_now()))
        self._computing[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node: Node, catalog: CatalogProtocol, run_id: str) -> None:
        outputs = {name: _save_version(catalog, name) for name in node.outputs}
        record = self._node_record(node, catalog, outputs, None)
        self._in_flight[node.name] = _NodeInFlight(record, catalog, run_id, set(node.outputs))
        if not node.outputs:
            self._finish(node.name)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, node: Node) -> None:
        in_flight = self._in_flight.get(node.name)
        if in_flight is not None:
            in_flight.unsaved.discard(dataset_name)
            if not in_flight.unsaved:
                self._finish(node.name)

    @hook_impl
    def on_node_error(self, error: Exception, node: Node, catalog: CatalogProtocol, run_id: str) -> None:
        self._in_flight[node.name] = _NodeInFlight(self._node_record(node, catalog, {}, error), catalog, run_id, set())
        self._finish(node.name)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: CatalogProtocol) -> None:
        self._save_run_record(run_params, pipeline, catalog, None)

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Pipeline,
                          catalog: CatalogProtocol) -> None:
        self._save_run_record(run_params, pipeline, catalog, error)

    def _node_record(self, node: Node, catalog: CatalogProtocol, outputs: dict[str, str | None],
                     error: Exception | None) -> dict[str, Any]:
        """The node's record but its total seconds: where and when it ran, inputs and outputs with versions."""
        compute_start = self._computing.pop(node.name, time.perf_counter())
        return {
            "node": node.name,
            "namespace": node.namespace,
            "tags": sorted(node.tags),
            "status": "ok" if error is None else "failed",
            "error": _describe_error(error),
            "started_at": self._started.get(node.name, (None, _utc_now()))[1],
            "compute_seconds": time.perf_counter() - compute_start,
            "inputs": {name: _load_version(catalog, name) for name in node.inputs},
            "outputs": outputs,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }

    def _finish(self, node_name: str) -> None:
        """Complete the node's record with its total seconds and write it through the catalog."""
        in_flight = self._in_flight.pop(node_name)
        start, _ = self._started.pop(node_name, (time.perf_counter(), None))
        record = {**in_flight.record, "seconds": time.perf_counter() - start, "finished_at": _utc_now()}
        in_flight.catalog.save(f"{NODE_RECORDS}.{in_flight.run_id}", {node_name: _jsonable(record)})

    def _save_run_record(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: CatalogProtocol,
                         error: Exception | None) -> None:
        """Merge the run's node records with the run-level facts; save the versioned record."""
        run_id = run_params["run_id"]
        records = _node_records(catalog, run_id)
        nodes = [records[node.name] for node in pipeline.nodes if node.name in records]
        started, started_at = self._run_started or (time.perf_counter(), _utc_now())
        record = {
            "run_id": run_id,
            "status": "ok" if error is None else "failed",
            "error": _describe_error(error),
            "started_at": started_at,
            "finished_at": _utc_now(),
            "wall_seconds": time.perf_counter() - started,
            "command": list(sys.argv),
            "run_params": {key: value for key, value in run_params.items() if key not in ("run_id", "project_path")},
            "parameters": catalog.load("parameters"),
            "environment": _environment(run_params),
            "packages": package_versions(PROVENANCE_PACKAGES),
            "git": _git_state(run_params["project_path"]),
            "nodes": nodes,
            "nodes_not_run": [node.name for node in pipeline.nodes if node.name not in records],
            "node_seconds_total": sum(node["seconds"] for node in nodes),
        }
        catalog.save(RUN_RECORD, _jsonable(record))


def _describe_error(error: Exception | None) -> str | None:
    return None if error is None else f"{type(error).__name__}: {error}"


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _save_version(catalog: CatalogProtocol, name: str) -> str | None:
    dataset = catalog.get(name)
    return dataset.resolve_save_version() if isinstance(dataset, AbstractVersionedDataset) else None


def _load_version(catalog: CatalogProtocol, name: str) -> str | None:
    dataset = catalog.get(name)
    return dataset.resolve_load_version() if isinstance(dataset, AbstractVersionedDataset) else None


def _node_records(catalog: CatalogProtocol, run_id: str) -> dict[str, dict[str, Any]]:
    """Node name → record, for the records the nodes of run ``run_id`` wrote."""
    name = f"{NODE_RECORDS}.{run_id}"
    catalog.release(name)  # forget a partition listing cached before the records were written
    if not catalog.exists(name):
        return {}
    return {node: load() for node, load in catalog.load(name).items()}


def _environment(run_params: dict[str, Any]) -> dict[str, Any]:
    return {
        "kedro_env": run_params.get("env"),
        "project_path": run_params.get("project_path"),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "pid": os.getpid(),
    }


def _git_state(path: str | None) -> dict[str, Any] | None:
    """Commit and dirtiness of the git repository holding ``path``; None outside one (or without git)."""
    if path is None:
        return None
    try:
        commit = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True, timeout=30).stdout.strip()
        changes = subprocess.run(["git", "-C", path, "status", "--porcelain", "--untracked-files=no"],
                                 capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(changes.strip())}


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (pydantic models dumped, anything else unknown as text)."""
    def fallback(item: Any) -> Any:
        return item.model_dump(mode="json") if isinstance(item, BaseModel) else str(item)

    return json.loads(json.dumps(value, default=fallback))
