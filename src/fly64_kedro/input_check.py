"""A check at pipeline start: every input the run loads must exist, else say what makes it.

Running one stage on its own (``kedro run --pipeline reconstruction``) loads the persisted
outputs of the stages before it. On a fresh checkout they do not exist; instead of a
dataset traceback from the first job, the run stops before any node with the missing
datasets, their files and the command that produces them. Generic: it serves every stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click
from kedro.framework.hooks import hook_impl
from kedro.io import CatalogProtocol
from kedro.pipeline import Pipeline

from fly64_kedro.parameters.study import USER_GROUND_TRUTH

MAX_LISTED = 6


class MissingInputsError(click.ClickException):
    """Inputs of the run do not exist; the CLI prints the message alone, without a traceback."""


def _data_inputs(pipeline: Pipeline) -> list[str]:
    return sorted(name for name in pipeline.inputs() if name != "parameters" and not name.startswith("params:"))


def _producer(dataset: str, registered: Mapping[str, Pipeline]) -> str | None:
    """The first registered pipeline (other than ``__default__``) that outputs ``dataset``."""
    return next((name for name, pipe in registered.items() if name != "__default__" and dataset in pipe.all_outputs()),
                None)


def upstream_pipelines(missing: list[str], catalog: CatalogProtocol, registered: Mapping[str, Pipeline]) -> list[str]:
    """Registered pipelines that make ``missing``, with their own missing upstream, upstream first."""
    chain: list[str] = []
    seen: set[str] = set()

    def visit(dataset: str) -> None:
        producer = _producer(dataset, registered)
        if producer is None or producer in seen:
            return
        seen.add(producer)
        for upstream in _data_inputs(registered[producer]):
            if not catalog.exists(upstream):
                visit(upstream)
        chain.append(producer)

    for dataset in missing:
        visit(dataset)
    return chain


def missing_inputs_message(pipeline: Pipeline, catalog: CatalogProtocol, registered: Mapping[str, Pipeline],
                           env: str | None = None) -> str | None:
    """What the run lacks and how to make it, or None when every data input exists."""
    missing = [name for name in _data_inputs(pipeline) if not catalog.exists(name)]
    if not missing:
        return None
    if USER_GROUND_TRUTH in missing:
        return _user_ground_truth_message(catalog, env)
    lines = [f"{len(missing)} input dataset(s) of this run do not exist yet:"]
    for name in missing[:MAX_LISTED]:
        dataset = catalog.get(name)
        where = getattr(dataset, "_filepath", None)
        producer = _producer(name, registered)
        made_by = f"made by the '{producer}' pipeline" if producer else "no registered pipeline makes it"
        lines.append(f"  - {name}{f' ({where})' if where else ''}: {made_by}")
    if len(missing) > MAX_LISTED:
        lines.append(f"  … and {len(missing) - MAX_LISTED} more")
    chain = upstream_pipelines(missing, catalog, registered)
    env_flag = f" --env {env}" if env and env != "local" else ""
    if chain:
        lines.append(f"Make them first: kedro run --pipelines {','.join(chain)}{env_flag}")
        lines.append(f"(or run the whole study: kedro run{env_flag})")
    else:
        lines.append("Add them to the catalog (see README) before this run.")
    return "\n".join(lines)


def _user_ground_truth_message(catalog: CatalogProtocol, env: str | None) -> str:
    """Why the user's ground truth cannot be read: no catalog entry, or no file where the entry points."""
    where = getattr(catalog.get(USER_GROUND_TRUTH), "_filepath", None)
    environment = f"conf/{env or 'local'}"
    if where is None:
        found = (f"this run's catalog ({environment} over conf/base) has no '{USER_GROUND_TRUTH}' entry; add it to "
                 f"{environment}/catalog.yml as the README shows")
    else:
        found = f"its '{USER_GROUND_TRUTH}' entry points at {where}, which does not exist"
    return (f"ground_truth.source is 'catalog' (your own object and probe), but {found}. conf/local is read only by "
            "runs without --env; a run with --env <name> reads conf/<name>. The embedded object is never used instead: "
            "set ground_truth.source: synthetic for it.")


class MissingInputsHook:
    """Stops a run whose input datasets do not exist, naming them and the command that makes them."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: CatalogProtocol) -> None:
        from kedro.framework.project import pipelines

        message = missing_inputs_message(pipeline, catalog, pipelines, run_params.get("env"))
        if message:
            raise MissingInputsError(message)
