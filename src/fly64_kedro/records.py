"""Helpers for the JSON records every stage writes (job records, histories, scores, provenance)."""

from __future__ import annotations

import importlib.metadata
import math
from collections.abc import Iterable
from typing import Any


def finite_or_none(value: Any) -> Any:
    """``value`` as standard JSON allows it: a NaN or ±inf float becomes None, anything else is unchanged."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def package_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Installed version of each distribution, None for one that is not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions
