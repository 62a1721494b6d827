"""Additive provenance in NPZ ``_metadata``: each stage adds its fields, nothing is dropped."""

from __future__ import annotations

from typing import Any

LOADED_FROM_KEY = "_loaded_from"


def add_stage(previous: dict[str, Any] | None, stage: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Metadata of a stage's output: the input's metadata plus ``fields``.

    Top-level keys of ``fields`` override same-named keys of ``previous`` (the latest stage
    describes the data as it is now); ``provenance`` keeps one entry per stage, in order,
    with the stage's fields and the file it read, so nothing earlier is lost.
    """
    previous = dict(previous or {})
    source = previous.pop(LOADED_FROM_KEY, None)
    history = list(previous.pop("provenance", []))
    history.append({"stage": stage, "input": source, "fields": fields})
    return {**previous, **fields, "provenance": history}
