"""Training nodes: one PINN per (dose, view), inference and stitching per (dose, view, split).

Thin wrappers of ``fly64_kedro.pinn``: they validate the scan view, pick the gridsize of the
view, train or predict, and package checkpoints, objects and job records. The network only
ever sees measured counts, positions and the probe; never the ground truth.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.study import dose_namespace
from fly64_kedro.parameters.training import TrainingParams
from fly64_kedro.physics.seeds import derive_seed, rng_for
from fly64_kedro.pinn.grouping import group_size, training_groups
from fly64_kedro.pinn.inference import reconstruct
from fly64_kedro.pinn.network import (
    PINNConfig,
    build_model,
    from_checkpoint,
    input_scale_for,
    to_checkpoint,
    unusable_checkpoint,
)
from fly64_kedro.pinn.training import fit
from fly64_kedro.provenance import add_stage
from fly64_kedro.reconstruction.lsqml import LSQMLProblem, problem_from_view
from fly64_kedro.reconstruction.runtime import describe_device, peak_memory, resolve_device
from fly64_kedro.validation import InputDataError

logger = logging.getLogger(__name__)


def _scan_view(scan_view: dict[str, Any], dataset: str, study: StudyDesign, view: str,
               training: TrainingParams) -> LSQMLProblem:
    """The validated scan view (counts, probe in counts units, positions, canvas)."""
    problem = problem_from_view(scan_view, dataset, study.patch_size, training.canvas_margin_px)
    declared = scan_view.get("_metadata", {}).get("gridsize")
    if declared is not None and declared != study.views[view].gridsize:
        raise InputDataError(dataset, "_metadata.gridsize", f"{study.views[view].gridsize} (study.views.{view}.gridsize)",
                             declared)
    return problem


def _too_few_positions(n_positions: int, gridsize: int) -> str | None:
    """Why a scan cannot feed the network (fewer positions than one group needs), or None."""
    needed = group_size(gridsize)
    return None if n_positions >= needed else f"{n_positions} position(s); a gridsize-{gridsize} group needs {needed}"


def _not_trainable_reason(scan_view: dict[str, Any], n_positions: int, gridsize: int) -> str | None:
    """Why a train view cannot train the network (too few positions, or flagged by the selection), or None."""
    if scan_view.get("_metadata", {}).get("sufficient_for", {}).get("pinn") is False:
        return f"the selection marked this view insufficient for the PINN ({n_positions} positions)"
    return _too_few_positions(n_positions, gridsize)


def train_pinn(
    scan_view: dict[str, Any], study: StudyDesign, training: TrainingParams, *, dose: float, view: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train the network of one (dose, view) on the view's train split.

    Input: the train scan view (``diffraction`` (n, N, N) sqrt-counts, positions (n,) px,
    probe, intensity scale). Returns (checkpoint, history). The checkpoint holds the
    weights, the probe and the input normalisation (``weights_only``-loadable); a view
    with too few positions, or a training whose loss stops being finite, gives a
    checkpoint without weights whose ``status``/``reason`` say why.
    """
    job = f"{dose_namespace(dose)}.{view}"
    problem = _scan_view(scan_view, f"{job}.train.scan_view", study, view, training)
    gridsize = study.views[view].gridsize
    fields: dict[str, Any] = {
        "dose": dose, "view": view, "gridsize": gridsize, "neighbor_count": study.neighbor_count,
        "n_positions": problem.n_positions, "training_parameters": training.model_dump(mode="json"),
    }
    reason = _not_trainable_reason(scan_view, problem.n_positions, gridsize)
    if reason is not None:
        logger.warning("PINN %s skipped: %s", job, reason)
        history = {"status": "skipped", "reason": reason, **fields}
        metadata = add_stage(scan_view.get("_metadata"), "training", history)
        return unusable_checkpoint("skipped", reason, metadata), history

    device = resolve_device(training.device)
    seed = derive_seed(study.root_seed, "pinn", dose, view)
    groups = training_groups(problem.ycoords, problem.xcoords, gridsize, study.neighbor_count,
                             training.groups_per_anchor, rng_for(study.root_seed, "pinn_grouping", dose, view))
    config = PINNConfig(
        patch_size=study.patch_size, gridsize=gridsize, width=training.network.width,
        n_blocks=training.network.n_blocks, input_scale=input_scale_for(problem.counts),
        merge_epsilon=training.merge_epsilon, trainable_intensity_scale=training.trainable_intensity_scale,
    )
    model = build_model(config, problem.probe, seed, str(device))
    logger.info("PINN %s: %d positions, %d groups of %d, %s", job, problem.n_positions, len(groups),
                groups.group_size, describe_device(device))
    started = time.perf_counter()
    with peak_memory(device) as memory:
        history = fit(model, problem.counts, groups, training, seed, description=f"PINN {job}")
    fields.update(
        n_groups=len(groups), seed=seed, device=describe_device(device), runtime_s=time.perf_counter() - started,
        amplitude_factor=model.amplitude_factor, **memory,
    )
    history.update(fields)
    logger.info("PINN %s: %s after %d epochs, train loss %s, validation loss %s, %.1f s", job, history["status"],
                history["epochs_run"], history["final_train_loss"], history["final_validation_loss"],
                fields["runtime_s"])
    summary = {key: value for key, value in history.items()
               if key not in ("epoch", "train_loss", "validation_loss", "learning_rate", "epoch_seconds")}
    metadata = add_stage(scan_view.get("_metadata"), "training", summary)
    if history["status"] != "ok":
        return unusable_checkpoint(history["status"], history["reason"], metadata), history
    return to_checkpoint(model, metadata), history


def _unusable_object(metadata: dict[str, Any] | None, status: str, reason: str) -> dict[str, Any]:
    """The object dataset of a skipped or failed arm: empty arrays, status and reason in metadata."""
    return {"object": np.zeros((0, 0), np.complex64), "canvas_origin_yx": np.zeros(2),
            "coverage": np.zeros((0, 0), np.float32),
            "_metadata": add_stage(metadata, "pinn_inference", {"status": status, "reason": reason})}


def _infer(problem: LSQMLProblem, scan_view: dict[str, Any], checkpoint: dict[str, Any], model_name: str,
           training: TrainingParams, fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(object payload, record) of one model (``model_name``, gridsize ``fields['gridsize']``) on one scan view."""
    record: dict[str, Any] = {**fields, "model": model_name, "status": "ok", "reason": None}
    trained_gridsize = (checkpoint.get("config") or {}).get("gridsize")
    if checkpoint.get("status") == "ok" and trained_gridsize != fields["gridsize"]:
        raise InputDataError(model_name, "config.gridsize", f"{fields['gridsize']} (the study's gridsize of its view)",
                             trained_gridsize)
    if checkpoint.get("status") != "ok":
        record.update(status="failed" if checkpoint.get("status") == "failed" else "skipped",
                      reason=f"model {model_name} is {checkpoint.get('status')}: {checkpoint.get('reason')}")
    elif (reason := _too_few_positions(problem.n_positions, fields["gridsize"])) is not None:
        record.update(status="skipped", reason=reason)
    if record["status"] != "ok":
        logger.warning("PINN inference %s with %s %s: %s", fields["job"], model_name, record["status"], record["reason"])
        return _unusable_object(scan_view.get("_metadata"), record["status"], record["reason"]), record

    device = resolve_device(training.device)
    model = from_checkpoint(checkpoint, str(device))
    with peak_memory(device) as memory:
        result = reconstruct(model, problem.counts, problem.ycoords, problem.xcoords, problem.canvas_origin_yx,
                             problem.canvas_shape, training.stitch_crop_fraction, training.inference_batch_size)
    seconds = result["predict_seconds"] + result["stitch_seconds"]
    record.update(
        n_groups=result["n_groups"], crop_px=result["crop_px"], canvas_shape=list(problem.canvas_shape),
        predict_seconds=result["predict_seconds"], stitch_seconds=result["stitch_seconds"],
        throughput_patterns_per_s={"predict": problem.n_positions / result["predict_seconds"],
                                   "predict_and_stitch": problem.n_positions / seconds},
        covered_fraction=float((result["coverage"] > 0).mean()),
        amplitude_factor=model.amplitude_factor, device=describe_device(device), **memory,
    )
    metadata = add_stage(scan_view.get("_metadata"), "pinn_inference", record)
    return {"object": result["object"], "canvas_origin_yx": problem.canvas_origin_yx, "coverage": result["coverage"],
            "_metadata": metadata}, record


def reconstruct_with_pinn(
    scan_view: dict[str, Any],
    model: dict[str, Any],
    study: StudyDesign,
    training: TrainingParams,
    gs1_model: dict[str, Any] | None = None,
    *,
    dose: float,
    view: str,
    split: str,
    gs1_view: str | None = None,
) -> dict[str, Any]:
    """Predict and stitch the object of one (dose, view, split) with the view's network.

    Returns ``object`` (ObjectNPZ payload: ``object`` (H, W) complex64, ``canvas_origin_yx``
    (2,) float64, ``coverage`` (H, W) float32) and ``record`` (JSON job record: status,
    reason, n_positions, throughput in patterns/s with and without stitching, …). With
    ``gs1_model`` (the gridsize-1 network of ``gs1_view`` at the same dose) also
    ``gs1_object``, that network run on this view's positions, summarised under the
    record's ``gs1`` key.
    """
    job = f"{dose_namespace(dose)}.{view}.{split}"
    problem = _scan_view(scan_view, f"{job}.scan_view", study, view, training)
    fields = {"job": job, "dose": dose, "view": view, "split": split, "method": "pinn",
              "gridsize": study.views[view].gridsize, "n_positions": problem.n_positions,
              "input_dataset": scan_view.get("_metadata", {}).get("_loaded_from")}
    obj, record = _infer(problem, scan_view, model, f"{dose_namespace(dose)}.{view}.pinn_model", training, fields)
    outputs = {"object": obj}
    if gs1_model is not None:
        if gs1_view is None:
            raise ValueError("a gridsize-1 model needs the name of the view it was trained on (gs1_view)")
        gs1_obj, gs1_record = _infer(problem, scan_view, gs1_model, f"{dose_namespace(dose)}.{gs1_view}.pinn_model",
                                     training, {**fields, "method": "pinn_gs1", "gridsize": study.views[gs1_view].gridsize})
        outputs["gs1_object"] = gs1_obj
        record["gs1"] = gs1_record
    outputs["record"] = record
    return outputs
