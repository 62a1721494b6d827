"""Lineage: what every dataset derives from, so that a result is never built from two runs' outputs.

Every dataset a node writes carries, in its ``_metadata["lineage"]``, the fingerprint of its
derivation: the node and output name, the fingerprints of the node's inputs and the digests
of the parameters the node used. It also carries the fingerprints of all its ancestors by
dataset name, the digests of every parameter section its ancestors used, the ground truth's
fingerprint and the study's root seed. A dataset that carries no lineage (a user's own
ground truth file) is a root: its fingerprint is a digest of its content.

Two inputs of one node are consistent when every ancestor they share has one fingerprint
and every parameter section they (and the node) use has one digest. A run that reuses the
persisted outputs of earlier runs is therefore fine as long as they belong together; a
newer version of a dataset that an older one was not made from is a conflict, named with the
datasets, their versions and the command that makes them consistent.

Fingerprints describe derivations, not bytes: two runs of the same pipeline with the same
parameters (the study is deterministic) give the same fingerprints. Parameters that only
decide where or how visibly a computation runs (``EXECUTION_FIELDS``) are left out of the
digests, so that training on a GPU and predicting on a CPU stay one lineage.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel

LINEAGE_KEY = "lineage"
"""Key of the lineage record inside a payload's ``_metadata``."""

EXECUTION_FIELDS = frozenset({"device", "progress_bar", "progress_bar_delay_s", "inference_batch_size"})
"""Parameter fields that change where or how visibly work runs, never its result: not part of a digest."""

_DIGEST_CHARS = 16


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:_DIGEST_CHARS]


def _without_execution_fields(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_execution_fields(item) for key, item in value.items() if key not in EXECUTION_FIELDS}
    if isinstance(value, list):
        return [_without_execution_fields(item) for item in value]
    return value


def params_digest(value: Any) -> str:
    """Digest of a parameter section (a pydantic model or plain JSON), execution-only fields left out."""
    plain = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return _digest(json.dumps(_without_execution_fields(plain), sort_keys=True, default=str))


def content_fingerprint(value: Any) -> str:
    """Digest of a payload's content (arrays by dtype, shape and bytes; the rest as JSON), metadata left out."""
    hasher = hashlib.sha256()

    def feed(item: Any) -> None:
        if isinstance(item, np.ndarray):
            array = np.ascontiguousarray(item)
            hasher.update(f"{array.dtype.str}{array.shape}".encode())
            hasher.update(array.tobytes())
        elif isinstance(item, Mapping):
            for key in sorted(item, key=str):
                if key not in ("_metadata", "metadata"):
                    hasher.update(str(key).encode())
                    feed(item[key])
        else:
            hasher.update(json.dumps(item, sort_keys=True, default=str).encode())

    feed(value)
    return hasher.hexdigest()[:_DIGEST_CHARS]


@dataclass(frozen=True)
class Lineage:
    """The lineage of one dataset (stored as a dict in ``_metadata["lineage"]``)."""

    fingerprint: str
    """Digest of this dataset's derivation (or of its content, for a root)."""
    dataset: str
    """Name the dataset was written (or first read) under."""
    run_id: str | None = None
    """Kedro session id of the run that wrote it; None for a root nobody wrote."""
    ground_truth: str | None = None
    """Fingerprint of the ground truth it derives from (None if none)."""
    root_seed: int | None = None
    """The study's root seed it was made with (None if no ``params:study`` was involved)."""
    params: dict[str, str] = field(default_factory=dict)
    """Parameter section → digest, for every section this dataset or an ancestor was made with."""
    ancestors: dict[str, str] = field(default_factory=dict)
    """Ancestor dataset name → fingerprint (the direct inputs included)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def metadata_of(value: Any) -> dict[str, Any] | None:
    """The metadata dict a node output carries: a payload's ``_metadata``, or a contract's ``metadata``."""
    metadata = value.get("_metadata") if isinstance(value, Mapping) else getattr(value, "metadata", None)
    return metadata if isinstance(metadata, dict) else None


def with_lineage(value: Any, lineage: Lineage) -> None:
    """Record ``lineage`` in a dict payload's ``_metadata`` or a contract's ``metadata`` (others carry none)."""
    record = {LINEAGE_KEY: lineage.as_dict()}
    if isinstance(value, dict):
        value["_metadata"] = {**(value.get("_metadata") or {}), **record}
    elif isinstance(getattr(value, "metadata", None), dict):
        value.metadata = {**value.metadata, **record}


def lineage_of(payload: Any, dataset: str) -> Lineage:
    """The lineage a payload or contract carries, or a root lineage from its content when it carries none."""
    metadata = metadata_of(payload)
    record = metadata.get(LINEAGE_KEY) if metadata else None
    if isinstance(record, Mapping) and "fingerprint" in record:
        return Lineage(**{key: record[key] for key in Lineage.__dataclass_fields__ if key in record})
    fingerprint = content_fingerprint(payload.to_payload() if hasattr(payload, "to_payload") else payload)
    return Lineage(fingerprint=fingerprint, dataset=dataset,
                   ground_truth=fingerprint if dataset == "ground_truth" else None)


def derive(node: str, output: str, inputs: Mapping[str, Lineage], params: Mapping[str, Any],
           run_id: str | None) -> Lineage:
    """The lineage of ``output`` written by ``node`` from ``inputs`` (name → lineage) with ``params`` (section → value)."""
    own_params = {section: params_digest(value) for section, value in params.items()}
    fingerprint = _digest(node, output, *(f"{name}={lineage.fingerprint}" for name, lineage in sorted(inputs.items())),
                          *(f"params:{section}={digest}" for section, digest in sorted(own_params.items())))
    ancestors: dict[str, str] = {}
    all_params: dict[str, str] = {}
    for name, lineage in inputs.items():
        ancestors.update(lineage.ancestors)
        ancestors[name] = lineage.fingerprint
        all_params.update(lineage.params)
    all_params.update(own_params)
    ground_truths = {lineage.ground_truth for lineage in inputs.values() if lineage.ground_truth}
    seeds = {lineage.root_seed for lineage in inputs.values() if lineage.root_seed is not None}
    study = params.get("study")
    if study is not None:
        seeds = {getattr(study, "root_seed", None) if isinstance(study, BaseModel) else study.get("root_seed")}
    return Lineage(
        fingerprint=fingerprint, dataset=output, run_id=run_id,
        ground_truth=fingerprint if output == "ground_truth" else next(iter(ground_truths), None),
        root_seed=next(iter(seeds), None), params=all_params, ancestors=ancestors,
    )


@dataclass(frozen=True)
class Conflict:
    """One disagreement among a node's inputs: an ancestor with two fingerprints, or a parameter with two digests."""

    subject: str
    """The ancestor dataset (e.g. 'dose_1000.test.measurements') or the parameter section ('params:study')."""
    claims: dict[str, list[str]]
    """Fingerprint or digest → the inputs (or 'this run') that claim it."""


def find_conflicts(inputs: Mapping[str, Lineage], params: Mapping[str, Any]) -> list[Conflict]:
    """Every ancestor and parameter section on which ``inputs`` (name → lineage) and ``params`` disagree."""
    claims: dict[str, dict[str, list[str]]] = {}

    def claim(subject: str, value: str, holder: str) -> None:
        claims.setdefault(subject, {}).setdefault(value, []).append(holder)

    for name, lineage in sorted(inputs.items()):
        claim(name, lineage.fingerprint, name)
        for ancestor, fingerprint in lineage.ancestors.items():
            claim(ancestor, fingerprint, name)
        for section, digest in lineage.params.items():
            claim(f"params:{section}", digest, name)
    for section, value in params.items():
        subject = f"params:{section}"
        if subject in claims:
            claim(subject, params_digest(value), "this run")
    return [Conflict(subject, holders) for subject, holders in claims.items() if len(holders) > 1]
