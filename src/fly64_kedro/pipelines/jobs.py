"""The job grid: doses × views × splits, and how one template node becomes one job.

The grid lives in ``conf/<env>/parameters.yml`` under ``study`` (doses, views) and is read
here once per process, from the run's own config loader when a Kedro context exists.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from fly64_kedro.parameters.study import SPLITS, StudyDesign, dose_namespace

_ACTIVE: dict[str, Any] = {}


def remember_config_loader(config_loader: Any) -> None:
    """Called by a hook once the Kedro context exists, so the grid follows ``--env``."""
    _ACTIVE["config_loader"] = config_loader


def load_parameters() -> dict[str, Any]:
    """Raw parameters of the active run (or of ``conf/base`` + ``local`` outside a run)."""
    loader = _ACTIVE.get("config_loader")
    if loader is None:
        from kedro.config import OmegaConfigLoader
        from kedro.framework.project import settings

        loader = OmegaConfigLoader(conf_source=settings.CONF_SOURCE, **settings.CONFIG_LOADER_ARGS)
    return loader["parameters"]


def dose_namespaces(study: StudyDesign) -> Iterator[tuple[str, float]]:
    """(namespace, dose) for each dose of the grid, e.g. ('dose_1000', 1000.0)."""
    for dose in study.doses:
        yield dose_namespace(dose), float(dose)


def job_cells(study: StudyDesign) -> Iterator[tuple[str, float, str, str]]:
    """(dose namespace, dose, view, split) for every reconstruction/comparison job."""
    for namespace, dose in dose_namespaces(study):
        for view in study.views:
            for split in SPLITS:
                yield namespace, dose, view, split


def bind_job(func: Callable[..., Any], **coordinates: Any) -> Callable[..., Any]:
    """``func`` with the job's coordinates (dose, view, split…) fixed as keyword arguments.

    The result keeps ``func``'s name, docstring and type hints (so Kedro still validates
    typed parameters and kedro-viz shows the source) but exposes only the remaining
    arguments as its signature.
    """
    bound = functools.partial(func, **coordinates)
    signature = inspect.signature(bound)
    functools.update_wrapper(bound, func)
    bound.__signature__ = signature  # type: ignore[attr-defined]
    return bound
