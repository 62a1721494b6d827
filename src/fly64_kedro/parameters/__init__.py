"""Typed parameters: one pydantic model per concern, validated before any node runs.

Each field is constrained and documented by its docstring, in the style of pty-chi's own
options classes. A node that declares ``study: StudyDesign`` receives the validated model.
``validate_parameters`` checks a whole parameter tree at once (every section, and no
section it does not know), so that a typo or a bad value stops a run with one line per
problem before the pipelines are even built.
"""

from __future__ import annotations

from typing import Any

import click
from pydantic import BaseModel, ValidationError

from fly64_kedro.parameters.comparison import ComparisonParams
from fly64_kedro.parameters.export import ExportParams
from fly64_kedro.parameters.reconstruction import ReconstructionParams
from fly64_kedro.parameters.runner import RunnerParams
from fly64_kedro.parameters.selection import SelectionParams
from fly64_kedro.parameters.study import (
    GroundTruthParams,
    ScanParams,
    StudyDesign,
    ViewSpec,
)
from fly64_kedro.parameters.training import TrainingParams

SECTIONS: dict[str, type[BaseModel]] = {
    "study": StudyDesign,
    "ground_truth": GroundTruthParams,
    "scan": ScanParams,
    "selection": SelectionParams,
    "training": TrainingParams,
    "reconstruction": ReconstructionParams,
    "comparison": ComparisonParams,
    "export": ExportParams,
    "runner": RunnerParams,
}
"""Every top-level parameter section the project reads, with its model."""


class ParameterError(click.ClickException):
    """Parameters that do not validate; the CLI prints the message alone, without a traceback."""


def _describe(section: str, error: Any) -> str:
    where = ".".join([section, *(str(part) for part in error["loc"])])
    if error["type"] == "missing":
        return f"  {where}: required, but missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    found = repr(error["input"])
    return f"  {where}: {message} (got {found if len(found) <= 80 else found[:77] + '...'})"


def validate_parameters(raw: dict[str, Any]) -> dict[str, BaseModel]:
    """Every section of ``raw`` (conf/<env>/parameters*.yml plus --params) as its model.

    Raises ``ParameterError`` listing every problem: unknown sections (with the known ones)
    and every invalid value, each named by its full path, with what was found.
    """
    problems = [f"  {name}: unknown parameter section; known sections: {', '.join(SECTIONS)}"
                for name in raw if name not in SECTIONS]
    models: dict[str, BaseModel] = {}
    for name, model in SECTIONS.items():
        if name not in raw:
            problems.append(f"  {name}: missing (every environment needs it; see conf/base/parameters*.yml)")
            continue
        try:
            models[name] = model.model_validate(raw[name])
        except ValidationError as exc:
            problems += [_describe(name, error) for error in exc.errors()]
    if problems:
        raise ParameterError("invalid parameters:\n" + "\n".join(problems))
    return models


__all__ = ["SECTIONS", "GroundTruthParams", "ParameterError", "ScanParams", "StudyDesign", "ViewSpec",
           "validate_parameters"]
