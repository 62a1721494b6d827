"""Project pipelines: one per stage, ``__default__`` = all of them.

Every stage builds its jobs from the study grid (``params:study``: ``study.cells()``), so
editing the doses or views in ``conf/<env>/parameters.yml`` is enough to change the whole
graph. Every parameter is validated here first: a bad value or an unknown section stops any
Kedro command with one line per problem.

Kedro calls ``register_pipelines()`` without arguments; the parameters of the run (with its
``--env`` and ``--params``) reach it from the ``after_context_created`` hook
(``use_config_loader``), the one piece of run state kept here. ``create_pipelines`` is the
same graph from any parameters, without Kedro.
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Pipeline

from fly64_kedro.methods import study_methods
from fly64_kedro.parameters import validate_parameters
from fly64_kedro.pipelines import (
    comparison,
    export,
    reconstruction,
    selection,
    simulation,
    training,
)

_RUN: dict[str, Any] = {}


def use_config_loader(config_loader: Any) -> None:
    """Called by a hook once the Kedro context exists, so the pipelines follow ``--env`` and ``--params``."""
    _RUN["config_loader"] = config_loader


def _run_parameters() -> dict[str, Any]:
    """Raw parameters of the active run (or of ``conf/base`` + ``local`` outside a run)."""
    loader = _RUN.get("config_loader")
    if loader is None:
        from kedro.config import OmegaConfigLoader
        from kedro.framework.project import settings

        loader = OmegaConfigLoader(conf_source=settings.CONF_SOURCE, **settings.CONFIG_LOADER_ARGS)
    return loader["parameters"]


def create_pipelines(raw_parameters: dict[str, Any]) -> dict[str, Pipeline]:
    """Every pipeline of the study described by ``raw_parameters`` (validated first)."""
    parameters = validate_parameters(raw_parameters)
    study, engines = parameters["study"], parameters["reconstruction"].engines
    methods = study_methods(study, engines)
    pipelines = {
        "simulation": simulation.create_pipeline(study, parameters["ground_truth"].source == "synthetic"),
        "selection": selection.create_pipeline(study),
        "training": training.create_pipeline(study, parameters["training"]),
        "reconstruction": reconstruction.create_pipeline(study, engines),
        "comparison": comparison.create_pipeline(study, methods),
        "export": export.create_pipeline(study, methods),
    }
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines


def register_pipelines() -> dict[str, Pipeline]:
    """Map pipeline names to ``Pipeline`` objects, for the parameters of the active run."""
    return create_pipelines(_run_parameters())
