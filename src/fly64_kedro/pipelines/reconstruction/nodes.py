"""Reconstruction nodes: one LSQML job per scan view, and the run's manifest and skip summary."""

from __future__ import annotations

import importlib.metadata
import logging
import math
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np

from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.reconstruction import LSQMLParams
from fly64_kedro.parameters.study import dose_namespace
from fly64_kedro.physics.seeds import derive_seed
from fly64_kedro.provenance import LOADED_FROM_KEY, add_stage
from fly64_kedro.reconstruction import (
    LOSS_DEFINITION,
    LSQMLProblem,
    NumericalFailure,
    degenerate_scan_reason,
    problem_from_view,
    run_lsqml,
)
from fly64_kedro.validation import InputDataError

logger = logging.getLogger(__name__)

SELECTION_FIELDS = ("selection_strategy", "acceptance_rate", "spacing_threshold", "n_accepted", "n_rejected",
                    "measured_overlap")
"""Selection telemetry of the view, surfaced into every job record."""

STATUSES = ("ok", "failed", "skipped")


def _versions() -> dict[str, str]:
    return {package: importlib.metadata.version(package) for package in ("ptychi", "torch")}


def _finite_or_none(value: float) -> float | None:
    """JSON has no NaN: a non-finite number is recorded as null."""
    return value if math.isfinite(value) else None


def selection_telemetry(metadata: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The view's selection fields and LSQML's position requirement, from its ``_metadata``."""
    fields = {}
    for name in (*SELECTION_FIELDS, "min_positions", "sufficient_for"):
        if name not in metadata:
            raise InputDataError(dataset, f"_metadata.{name}", "selection telemetry written by the selection stage",
                                 "missing")
        fields[name] = metadata[name]
    for name in ("min_positions", "sufficient_for"):
        if not isinstance(fields[name], dict) or "lsqml" not in fields[name]:
            raise InputDataError(dataset, f"_metadata.{name}.lsqml", "an entry for LSQML", repr(fields[name]))
    return fields


def _cannot_run(problem: LSQMLProblem, telemetry: dict[str, Any], lsqml: LSQMLParams) -> tuple[str, str, str] | None:
    """(status, category, reason) when the job cannot run, else None.

    Too few positions or a degenerate geometry skip the job; data without a single photon
    fail it (pty-chi would run to a meaningless object and report success).
    """
    needed = int(telemetry["min_positions"]["lsqml"])
    if not telemetry["sufficient_for"]["lsqml"] or problem.n_positions < needed:
        reason = (f"{problem.n_positions} position(s) in the view ({telemetry['selection_strategy']} selection, "
                  f"spacing threshold {telemetry['spacing_threshold']} px); LSQML needs at least {needed}")
        return "skipped", "too_few_positions", reason
    if not problem.counts.any():
        return "failed", "no_photons", f"the {problem.n_positions} diffraction patterns hold no photons (every count is 0)"
    degenerate = degenerate_scan_reason(problem, lsqml)
    return None if degenerate is None else ("skipped", "degenerate_scan", degenerate)


EMPTY_CANVAS = {"canvas_shape": [0, 0], "canvas_origin_yx": [0.0, 0.0]}
"""Canvas fields of a record whose job produced no image."""


def _empty_object(loss_history: np.ndarray) -> dict[str, Any]:
    """The object payload of a job that produced no image: a (0, 0) object, zero origin."""
    return {"object": np.zeros((0, 0), dtype=np.complex64), "canvas_origin_yx": np.zeros(2),
            "loss_history": loss_history}


def _record_template(problem: LSQMLProblem, telemetry: dict[str, Any], lsqml: LSQMLParams,
                     seed: int) -> dict[str, Any]:
    """A job record before the job runs: inputs, settings, versions; outcome fields empty."""
    return {
        "status": "ok", "reason": None, "failure_category": None,
        "n_positions": problem.n_positions,
        **{name: telemetry[name] for name in SELECTION_FIELDS},
        "min_positions_lsqml": int(telemetry["min_positions"]["lsqml"]),
        "epochs_requested": lsqml.num_epochs, "epochs_completed": 0, "final_loss": None,
        "loss_definition": LOSS_DEFINITION, "noise_model": lsqml.noise_model, "refine_probe": lsqml.refine_probe,
        "seed": seed, "runtime_s": 0.0, "build_s": None, "seconds_per_epoch": None,
        "peak_rss_mb": None, "rss_at_start_mb": None, "peak_rss_method": None, "peak_gpu_mb": None,
        "device_requested": lsqml.device, "device": None,
        "canvas_shape": list(problem.canvas_shape), "canvas_origin_yx": problem.canvas_origin_yx.tolist(),
        **{f"{package}_version": version for package, version in _versions().items()},
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def reconstruct_view(
    scan_view: dict[str, Any],
    lsqml: LSQMLParams,
    study: StudyDesign,
    *,
    dose: float,
    view: str,
    split: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One LSQML job: the view's counts, known probe and positions → object on its canvas.

    Returns the object payload — ``object`` (H, W) complex64 (``(0, 0)`` when skipped or
    failed), ``canvas_origin_yx`` (2,) float64 (object pixel of canvas pixel (0, 0)),
    ``loss_history`` (epochs,) float64 and, with ``refine_probe``, ``probe`` (N, N) complex64
    in ``probeGuess``'s scaling — and the job record (JSON). Too few positions or a
    degenerate scan → ``skipped``; no photons or a known numerical failure → ``failed``; all
    with a reason.
    Bad input and anything unexpected raise.
    """
    job = f"{dose_namespace(dose)}.{view}.{split}"
    dataset = f"{job}.scan_view"
    metadata = dict(scan_view.get("_metadata") or {})
    telemetry = selection_telemetry(metadata, dataset)
    problem = problem_from_view(scan_view, dataset, study.patch_size, lsqml.canvas_margin_px)
    seed = derive_seed(study.root_seed, "lsqml", dose, view, split)
    record = {"job": job, "dose": dose, "view": view, "split": split,
              **_record_template(problem, telemetry, lsqml, seed),
              "input_dataset": {"name": dataset, **(metadata.get(LOADED_FROM_KEY) or {"path": None, "version": None})}}
    refusal = _cannot_run(problem, telemetry, lsqml)
    if refusal is not None:
        record.update(status=refusal[0], failure_category=refusal[1], reason=refusal[2], **EMPTY_CANVAS)
        payload = _empty_object(np.zeros(0))
    else:
        try:
            result = run_lsqml(problem, lsqml, seed, label=job)
        except NumericalFailure as failure:
            record.update(status="failed", failure_category="numerical_failure", reason=failure.cause,
                          epochs_completed=int(failure.loss_history.size), runtime_s=failure.runtime_s,
                          device=failure.device, **EMPTY_CANVAS,
                          **{key: failure.memory.get(key) for key in ("peak_rss_mb", "rss_at_start_mb",
                                                                      "peak_rss_method", "peak_gpu_mb")})
            payload = _empty_object(failure.loss_history)
        else:
            record.update(epochs_completed=result.epochs_completed,
                          final_loss=_finite_or_none(float(result.loss_history[-1])),
                          runtime_s=result.build_s + result.run_s, build_s=result.build_s,
                          seconds_per_epoch=result.run_s / result.epochs_completed, device=result.device,
                          **result.memory)
            payload = {"object": result.object, "canvas_origin_yx": problem.canvas_origin_yx,
                       "loss_history": result.loss_history}
            if lsqml.refine_probe:
                scale = float(np.asarray(scan_view["intensity_scale"]).reshape(()))
                payload["probe"] = (result.probe / np.sqrt(scale)).astype(np.complex64)
    logger.info("LSQML %s: %s, %d positions, %d/%d epochs, %.1f s%s", job, record["status"], problem.n_positions,
                record["epochs_completed"], lsqml.num_epochs, record["runtime_s"],
                f" — {record['reason']}" if record["reason"] else "")
    payload["_metadata"] = add_stage(metadata, "lsqml", record)
    return payload, record


def summarize_jobs(lsqml: LSQMLParams, study: StudyDesign, *records: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's ``reconstruction_manifest`` and ``reconstruction_skip_summary``.

    The manifest holds a run id, the parameters, package versions, totals by status and
    every job record; the skip summary lists the jobs that ran but were skipped or failed,
    each with its category and reason. Jobs left out of a filtered run (``--namespaces``)
    write no record, so they never appear as skipped.
    """
    run_id = uuid.uuid4().hex
    totals = {status: sum(record["status"] == status for record in records) for status in STATUSES}
    manifest = {
        "run_id": run_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "method": "pty-chi LSQML",
        **{f"{package}_version": version for package, version in _versions().items()},
        "parameters": {"lsqml": lsqml.model_dump(mode="json"), "study": study.model_dump(mode="json")},
        "totals": {**totals, "jobs": len(records)},
        "runtime_s": float(sum(record["runtime_s"] for record in records)),
        "jobs": list(records),
    }
    keys = ("job", "dose", "view", "split", "failure_category", "reason", "n_positions", "epochs_completed")
    summary = {
        "run_id": run_id,
        "n_jobs": len(records),
        **{f"n_{status}": totals[status] for status in ("skipped", "failed")},
        **{status: [{key: record[key] for key in keys} for record in records if record["status"] == status]
           for status in ("skipped", "failed")},
    }
    for status in ("skipped", "failed"):
        if totals[status]:
            logger.warning("LSQML: %d of %d job(s) %s — see reconstruction_skip_summary", totals[status],
                           len(records), status)
    return manifest, summary
