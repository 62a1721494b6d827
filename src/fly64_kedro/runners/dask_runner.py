"""``DaskRunner``: every Kedro node is one Dask task on a ``distributed`` cluster.

Written for the Kedro 1.x runner API (``AbstractRunner._run(pipeline, catalog,
hook_manager, run_id)``, nodes executed through ``kedro.runner.Task``).

- **Where it runs.** The scheduler address comes from, in order: the runner argument
  ``scheduler_address`` (``kedro run --runner-params scheduler_address=tcp://…``), the
  environment variable ``FLY64_DASK_SCHEDULER``, the parameter
  ``runner.dask.scheduler_address``; with none of these the runner starts a
  ``distributed.LocalCluster`` shaped by ``runner.dask.local_cluster`` and closes it after the run.
- **Data between tasks.** Tasks exchange nothing but the fact that they finished: every
  dataset a node writes goes through the catalog to storage that the next task reads
  (local disk for a LocalCluster, shared storage or an fsspec URL such as ``s3://`` on a
  cluster). A node output that is an in-memory ``MemoryDataset`` would stay in the
  worker that wrote it, so the runner refuses such a pipeline before any task starts, naming
  the datasets. Pipeline *inputs* held in memory (the parameters, ``params:…``) are sent
  by value: the catalog, parameters included, is scattered to the cluster once.
- **Hooks.** The driver's hook manager cannot be pickled. As Kedro's ``ParallelRunner`` does,
  each task builds a hook manager in its worker from the project's ``settings.HOOKS``
  (and plugin entry points), so ``before/after_node_run``, ``on_node_error`` and the dataset
  hooks run in the worker, next to the node. Pipeline hooks run in the driver. A hook that
  keeps state across nodes in memory therefore sees only the nodes of its own worker; the
  project's provenance hook writes one record per node through the catalog for that reason.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from distributed import Client, LocalCluster, as_completed
from kedro.framework.hooks.manager import (
    _create_hook_manager,
    _register_hooks,
    _register_hooks_entry_points,
)
from kedro.io import CatalogProtocol, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node
from kedro.runner import AbstractRunner
from kedro.runner.task import Task

from fly64_kedro.parameters.runner import DaskRunnerParams, RunnerParams

SCHEDULER_ENV_VAR = "FLY64_DASK_SCHEDULER"
RUNNER_PARAMS = "params:runner"


class InMemoryHandoffError(ValueError):
    """A node output of a Dask run is an in-memory dataset that no other task could read."""


def refuse_in_memory_handoffs(pipeline: Pipeline, catalog: CatalogProtocol) -> None:
    """Raise ``InMemoryHandoffError`` naming every node output that is a ``MemoryDataset``.

    Each is listed with the node writing it and the nodes reading it. Pipeline inputs held in
    memory (parameters) are not hand-offs: they travel to the workers with the catalog.
    """
    readers: dict[str, list[str]] = {}
    for node in pipeline.nodes:
        for name in node.inputs:
            readers.setdefault(name, []).append(node.name)
    lines = [
        f"  - '{name}': written by node '{node.name}', "
        + (f"read by {', '.join(repr(reader) for reader in sorted(readers[name]))}" if name in readers
           else "a pipeline output (read by no node)")
        for node in pipeline.nodes
        for name in node.outputs
        if isinstance(catalog.get(name, fallback_to_runtime_pattern=True), MemoryDataset)
    ]
    if lines:
        raise InMemoryHandoffError(
            "DaskRunner runs every node as its own Dask task, possibly on another machine, so each dataset "
            "a node writes must be persisted where the other tasks can read it. These node outputs are "
            "in-memory datasets (MemoryDataset: not registered in the catalog, or registered as in-memory):\n"
            + "\n".join(sorted(lines))
            + "\nRegister them in conf/<env>/catalog*.yml with a persisted type (e.g. fly64_kedro.datasets.NPZDataset "
            "or json.JSONDataset) on storage every worker reaches, or run with SequentialRunner/ThreadRunner."
        )


@contextmanager
def _quiet_logger(name: str, level: int = logging.WARNING) -> Iterator[None]:
    """Raise logger ``name`` to ``level`` for the duration of the block."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(max(level, previous))
    try:
        yield
    finally:
        logger.setLevel(previous)


def _bootstrap_worker(package_name: str | None, logging_config: dict[str, Any] | None) -> None:
    """Configure the Kedro project (settings, hooks, logging) once per worker process."""
    from kedro.framework import project

    if package_name and project.PACKAGE_NAME != package_name:
        project.configure_project(package_name)
        if logging_config:
            project.configure_logging(logging_config)


def _worker_hook_manager() -> Any:
    """A hook manager with the project's hooks, built where the node runs."""
    from kedro.framework.project import settings

    hook_manager = _create_hook_manager()
    _register_hooks(hook_manager, settings.HOOKS)
    _register_hooks_entry_points(hook_manager, settings.DISABLE_HOOKS_FOR_PLUGINS)
    return hook_manager


def run_node_task(
    node: Node,
    catalog: CatalogProtocol,
    package_name: str | None,
    logging_config: dict[str, Any] | None,
    is_async: bool,
    run_id: str | None,
    *upstream: str,
) -> str:
    """The Dask task of one node: load its inputs, run it with hooks, save its outputs.

    ``upstream`` are the names returned by the tasks of the nodes it depends on; they only
    order the graph (the data itself goes through the catalog). Returns the node's name.
    """
    _bootstrap_worker(package_name, logging_config)
    Task(node=node, catalog=catalog, is_async=is_async, hook_manager=_worker_hook_manager(), run_id=run_id).execute()
    return node.name


class DaskRunner(AbstractRunner):
    """Runs a Kedro pipeline on a Dask ``distributed`` cluster, one task per node.

    Use it with ``kedro run --runner fly64_kedro.runners.DaskRunner``; see the module docstring
    for where the scheduler address comes from and what is required of the catalog.
    """

    def __init__(self, scheduler_address: str | None = None, is_async: bool = False) -> None:
        """
        Args:
            scheduler_address: address of a running Dask scheduler (overrides the
                ``FLY64_DASK_SCHEDULER`` variable and the ``runner.dask`` parameters).
            is_async: load and save each node's datasets with threads inside its task.
        """
        super().__init__(is_async=is_async)
        self._scheduler_address = scheduler_address

    def __repr__(self) -> str:  # Kedro records str(runner) in the run parameters
        return f"DaskRunner(scheduler_address={self._scheduler_address!r}, is_async={self._is_async})"

    def _get_executor(self, max_workers: int) -> None:
        """Dask schedules the tasks; no local executor (required by ``AbstractRunner``)."""

    def _settings(self, catalog: CatalogProtocol) -> DaskRunnerParams:
        """The validated ``runner.dask`` parameters (defaults when the catalog has none)."""
        raw = catalog.load(RUNNER_PARAMS) if RUNNER_PARAMS in catalog else {}
        return RunnerParams.model_validate(raw).dask

    def _client(self, stack: ExitStack, settings: DaskRunnerParams) -> Any:
        """A client of the chosen scheduler, or of a LocalCluster closed with ``stack``."""
        address = self._scheduler_address or os.environ.get(SCHEDULER_ENV_VAR) or settings.scheduler_address
        if address:
            self._logger.info("DaskRunner: connecting to the Dask scheduler at %s", address)
            return stack.enter_context(Client(address))
        local = settings.local_cluster
        stack.enter_context(_quiet_logger("distributed"))  # the scheduler and nannies live in this process
        cluster = stack.enter_context(
            LocalCluster(n_workers=local.n_workers, threads_per_worker=local.threads_per_worker,
                         processes=local.processes, dashboard_address=local.dashboard_address)
        )
        self._logger.info("DaskRunner: started a LocalCluster of %d %s at %s", len(cluster.workers),
                          "processes" if local.processes else "threads", cluster.scheduler_address)
        return stack.enter_context(Client(cluster))

    def _run(
        self,
        pipeline: Pipeline,
        catalog: CatalogProtocol,
        hook_manager: Any = None,
        run_id: str | None = None,
    ) -> None:
        """Submit every node as a task depending on its parents' tasks; wait for all of them.

        The first failing task cancels the rest; its exception is re-raised here after the
        usual Kedro hint on how to resume the run.
        """
        from kedro.framework.project import (  # set when the project is configured
            LOGGING,
            PACKAGE_NAME,
        )

        refuse_in_memory_handoffs(pipeline, catalog)
        settings = self._settings(catalog)
        token = uuid.uuid4().hex  # task keys '<node name>-<token>': the dashboard groups them by node
        with ExitStack() as stack:
            client = self._client(stack, settings)
            # one copy of the catalog (parameters included) on every worker, so tasks go where
            # the scheduler likes rather than where a single copy lives
            shared_catalog = client.scatter(catalog, broadcast=True, hash=False)
            logging_config = dict(LOGGING) if PACKAGE_NAME else None
            dependencies = pipeline.node_dependencies
            futures: dict[Node, Any] = {}
            for node in pipeline.nodes:  # topological order: parents are submitted first
                parents = [futures[parent] for parent in dependencies[node]]
                futures[node] = client.submit(
                    run_node_task, node, shared_catalog, PACKAGE_NAME, logging_config, self._is_async, run_id,
                    *parents, key=f"{node.name}-{token}", pure=False,
                )
            self._wait(pipeline, catalog, futures)

    def _wait(self, pipeline: Pipeline, catalog: CatalogProtocol, futures: dict[Node, Any]) -> None:
        """Log each finished node; on the first failure cancel what is left and re-raise."""
        node_of = {future.key: node for node, future in futures.items()}
        done: set[Node] = set()
        for future in as_completed(futures.values()):
            try:
                future.result()
            except Exception:
                for pending in futures.values():
                    pending.cancel()
                self._suggest_resume_scenario(pipeline, done, catalog)
                raise
            done.add(node_of[future.key])
            self._logger.info("Completed node: %s", node_of[future.key].name)
            self._logger.info("Completed %d out of %d tasks", len(done), len(futures))
