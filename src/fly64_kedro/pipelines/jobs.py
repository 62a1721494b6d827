"""How one template node becomes one job of the grid: its ``Cell`` bound as a keyword argument."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any


def bind_job(func: Callable[..., Any], **coordinates: Any) -> Callable[..., Any]:
    """``func`` with the job's coordinates (its ``cell``, an engine, …) fixed as keyword arguments.

    The result keeps ``func``'s name, docstring and type hints (so Kedro still validates
    typed parameters and kedro-viz shows the source) but exposes only the remaining
    arguments as its signature.
    """
    bound = functools.partial(func, **coordinates)
    signature = inspect.signature(bound)
    functools.update_wrapper(bound, func)
    bound.__signature__ = signature  # type: ignore[attr-defined]
    return bound
