"""Project pipelines: one per stage, ``__default__`` = all of them.

Every stage builds its jobs from the study grid (``params:study``), so editing the doses or
views in ``conf/<env>/parameters.yml`` is enough to change the whole graph. Every parameter
is validated here first: a bad value or an unknown section stops any Kedro command with one
line per problem.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from fly64_kedro.parameters import validate_parameters
from fly64_kedro.pipelines import comparison, export, reconstruction, selection, simulation, training
from fly64_kedro.pipelines.jobs import load_parameters


def register_pipelines() -> dict[str, Pipeline]:
    """Map pipeline names to ``Pipeline`` objects."""
    parameters = validate_parameters(load_parameters())
    study = parameters["study"]
    pipelines = {
        "simulation": simulation.create_pipeline(study, parameters["ground_truth"].source == "synthetic"),
        "selection": selection.create_pipeline(study),
        "training": training.create_pipeline(study, parameters["training"].data),
        "reconstruction": reconstruction.create_pipeline(study),
        "comparison": comparison.create_pipeline(study),
        "export": export.create_pipeline(study),
    }
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
