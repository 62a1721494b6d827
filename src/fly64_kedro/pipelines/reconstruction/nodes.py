"""Reconstruction nodes: one pty-chi job per engine and scan view, and the run's manifest and skip summary."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np

from fly64_kedro.contracts import ObjectEstimate, ScanView
from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.reconstruction import ReconstructionParams
from fly64_kedro.parameters.study import Cell
from fly64_kedro.physics.seeds import derive_seed
from fly64_kedro.provenance import LOADED_FROM_KEY, add_stage
from fly64_kedro.reconstruction import (
    ENGINES,
    NumericalFailure,
    Problem,
    RunSettings,
    run_engine,
)
from fly64_kedro.records import finite_or_none, package_versions

logger = logging.getLogger(__name__)

SELECTION_FIELDS = ("selection_strategy", "acceptance_rate", "spacing_threshold", "n_accepted", "n_rejected",
                    "measured_overlap")
"""Selection telemetry of the view, surfaced into every job record."""

STATUSES = ("ok", "failed", "skipped")
EMPTY_CANVAS = {"canvas_shape": [0, 0], "canvas_origin_yx": [0.0, 0.0]}
"""Canvas fields of a record whose job produced no image."""
MEMORY_FIELDS = ("peak_rss_mb", "rss_at_start_mb", "peak_rss_method", "peak_gpu_mb")


def _cannot_run(view: ScanView, problem: Problem, refine_probe: bool) -> tuple[str, str, str] | None:
    """(status, category, reason) when the job cannot run, else None.

    Too few positions or a degenerate geometry skip the job; data without a single photon
    fail it (pty-chi would run to a meaningless object and report success).
    """
    telemetry = view.telemetry
    needed = telemetry.min_positions["iterative"]
    if not telemetry.sufficient_for["iterative"] or view.n_positions < needed:
        reason = (f"{view.n_positions} position(s) in the view ({telemetry.selection_strategy} selection, "
                  f"spacing threshold {telemetry.spacing_threshold} px); an iterative engine needs at least {needed}")
        return "skipped", "too_few_positions", reason
    if not view.diffraction.any():
        return "failed", "no_photons", f"the {view.n_positions} diffraction patterns hold no photons (every count is 0)"
    degenerate = problem.degenerate_reason(refine_probe)
    return None if degenerate is None else ("skipped", "degenerate_scan", degenerate)


def _record_template(view: ScanView, problem: Problem, engine: str, reconstruction: ReconstructionParams,
                     seed: int) -> dict[str, Any]:
    """A job record before the job runs: inputs, settings, versions; outcome fields empty."""
    options = reconstruction.options[engine]
    telemetry = view.telemetry.model_dump()
    return {
        "status": "ok", "reason": None, "failure_category": None, "engine": engine,
        "n_positions": view.n_positions,
        **{name: telemetry[name] for name in SELECTION_FIELDS},
        "min_positions_iterative": view.telemetry.min_positions["iterative"],
        "epochs_requested": options.num_epochs, "epochs_completed": 0, "final_loss": None,
        "loss_definition": ENGINES[engine].loss_definition, "options": options.model_dump(mode="json"),
        "refine_probe": options.refine_probe, "seed": seed, "runtime_s": 0.0, "build_s": None,
        "seconds_per_epoch": None, **dict.fromkeys(MEMORY_FIELDS), "device_requested": reconstruction.device,
        "device": None, "canvas_shape": list(problem.canvas_shape), "canvas_origin_yx": problem.canvas_origin_yx.tolist(),
        **{f"{package}_version": version for package, version in package_versions(("ptychi", "torch")).items()},
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def reconstruct_view(
    scan_view: ScanView,
    reconstruction: ReconstructionParams,
    study: StudyDesign,
    *,
    cell: Cell,
    engine: str,
) -> tuple[ObjectEstimate, dict[str, Any]]:
    """One iterative job: ``engine`` on the view's counts, known probe and positions → object on its canvas.

    Returns the ``ObjectEstimate`` — the object (H, W) complex64 on the view's canvas
    (``(0, 0)`` when skipped or failed), its ``loss_history`` (epochs,) float64 and, with
    ``refine_probe``, the refined ``probe`` (N, N) complex64 in ``probeGuess``'s scaling — and
    the job record (JSON). Too few positions or a degenerate scan → ``skipped``; no photons or
    a known numerical failure → ``failed``; all with a reason. Anything unexpected raises.
    """
    options = reconstruction.options[engine]
    problem = Problem.from_measurements(scan_view, reconstruction.canvas_margin_px)
    seed = derive_seed(study.root_seed, engine, cell.dose, cell.view, cell.split)
    record = {"job": str(cell), "dose": cell.dose, "view": cell.view, "split": cell.split,
              **_record_template(scan_view, problem, engine, reconstruction, seed),
              "input_dataset": {"name": cell.dataset("scan_view"),
                                **(scan_view.metadata.get(LOADED_FROM_KEY) or {"path": None, "version": None})}}
    refusal = _cannot_run(scan_view, problem, options.refine_probe)
    estimate: ObjectEstimate | None = None
    losses = np.zeros(0)
    if refusal is not None:
        record.update(status=refusal[0], failure_category=refusal[1], reason=refusal[2], **EMPTY_CANVAS)
    else:
        settings = RunSettings(reconstruction.device, reconstruction.dtype, reconstruction.progress_bar_delay_s)
        try:
            result = run_engine(ENGINES[engine], options, problem, settings, seed, label=f"{engine} {cell}")
        except NumericalFailure as failure:
            record.update(status="failed", failure_category="numerical_failure", reason=failure.cause,
                          epochs_completed=int(failure.loss_history.size), runtime_s=failure.runtime_s,
                          device=failure.device, **EMPTY_CANVAS, **{key: failure.memory.get(key) for key in MEMORY_FIELDS})
            losses = failure.loss_history
        else:
            record.update(epochs_completed=result.epochs_completed,
                          final_loss=finite_or_none(float(result.loss_history[-1])),
                          runtime_s=result.build_s + result.run_s, build_s=result.build_s,
                          seconds_per_epoch=result.run_s / result.epochs_completed, device=result.device,
                          **result.memory)
            probe = ((result.probe / np.sqrt(scan_view.intensity_scale)).astype(np.complex64)
                     if options.refine_probe else None)
            estimate = ObjectEstimate(result.object, problem.canvas_origin_yx, loss_history=result.loss_history,
                                      probe=probe)
    logger.info("%s %s: %s, %d positions, %d/%d epochs, %.1f s%s", engine, cell, record["status"],
                problem.n_positions, record["epochs_completed"], options.num_epochs, record["runtime_s"],
                f" — {record['reason']}" if record["reason"] else "")
    metadata = add_stage(scan_view.metadata, engine, record)
    if estimate is None:
        return ObjectEstimate.unusable(record["status"], record["reason"], metadata, loss_history=losses), record
    estimate.metadata = metadata
    return estimate, record


def summarize_jobs(reconstruction: ReconstructionParams, study: StudyDesign,
                   *records: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's ``reconstruction_manifest`` and ``reconstruction_skip_summary`` over every engine's jobs.

    The manifest holds a run id, the parameters, package versions, totals by status (and by
    engine) and every job record; the skip summary lists the jobs that ran but were skipped or
    failed, each with its engine, category and reason. Jobs left out of a filtered run
    (``--namespaces``) write no record, so they never appear as skipped.
    """
    run_id = uuid.uuid4().hex
    totals = {status: sum(record["status"] == status for record in records) for status in STATUSES}
    manifest = {
        "run_id": run_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "engines": {name: f"pty-chi {ENGINES[name].title}" for name in reconstruction.engines},
        **{f"{package}_version": version for package, version in package_versions(("ptychi", "torch")).items()},
        "parameters": {"reconstruction": reconstruction.model_dump(mode="json"), "study": study.model_dump(mode="json")},
        "totals": {**totals, "jobs": len(records)},
        "totals_by_engine": {name: {status: sum(r["status"] == status and r["engine"] == name for r in records)
                                    for status in STATUSES} for name in reconstruction.engines},
        "runtime_s": float(sum(record["runtime_s"] for record in records)),
        "jobs": list(records),
    }
    keys = ("job", "engine", "dose", "view", "split", "failure_category", "reason", "n_positions", "epochs_completed")
    summary = {
        "run_id": run_id,
        "n_jobs": len(records),
        **{f"n_{status}": totals[status] for status in ("skipped", "failed")},
        **{status: [{key: record[key] for key in keys} for record in records if record["status"] == status]
           for status in ("skipped", "failed")},
    }
    for status in ("skipped", "failed"):
        if totals[status]:
            logger.warning("reconstruction: %d of %d job(s) %s — see reconstruction_skip_summary", totals[status],
                           len(records), status)
    return manifest, summary
