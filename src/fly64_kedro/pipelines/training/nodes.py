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
from fly64_kedro.pinn.grouping import Groups, group_size, regime_groups, split_positions, training_groups
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
               training: TrainingParams, check_gridsize: bool = True) -> LSQMLProblem:
    """The validated scan view (counts, probe in counts units, positions, canvas)."""
    problem = problem_from_view(scan_view, dataset, study.patch_size, training.canvas_margin_px)
    declared = scan_view.get("_metadata", {}).get("gridsize")
    if check_gridsize and declared is not None and declared != study.views[view].gridsize:
        raise InputDataError(dataset, "_metadata.gridsize", f"{study.views[view].gridsize} (study.views.{view}.gridsize)",
                             declared)
    return problem


def _too_few_positions(n_positions: int, gridsize: int) -> str | None:
    """Why a scan cannot feed the network (fewer positions than one group needs), or None."""
    needed = group_size(gridsize)
    return None if n_positions >= needed else f"{n_positions} position(s); a gridsize-{gridsize} group needs {needed}"


def _not_trainable_reason(scan_view: dict[str, Any], problem: LSQMLProblem, gridsize: int) -> str | None:
    """Why the data cannot train the network (too few positions, flagged by the selection, no photons), or None."""
    if scan_view.get("_metadata", {}).get("sufficient_for", {}).get("pinn") is False:
        return f"the selection marked this view insufficient for the PINN ({problem.n_positions} positions)"
    if problem.n_positions and not problem.counts.any():
        return f"the {problem.n_positions} diffraction patterns hold no photons (every count is 0)"
    return _too_few_positions(problem.n_positions, gridsize)


def _groups_of(subset: np.ndarray, problem: LSQMLProblem, gridsize: int, spacing: float | None, study: StudyDesign,
               training: TrainingParams, rng: np.random.Generator) -> Groups:
    """Groups of the positions ``subset`` (indices into the problem's positions), as indices into all of them.

    With ``spacing`` the groups are drawn in the view's regime (members ≥ S apart), else
    from each anchor's K nearest neighbours.
    """
    y, x = problem.ycoords[subset], problem.xcoords[subset]
    if spacing is not None:
        groups = regime_groups(y, x, gridsize, spacing, training.groups_per_anchor, rng)
    else:
        groups = training_groups(y, x, gridsize, study.neighbor_count, training.groups_per_anchor, rng)
    return Groups(subset[groups.indices], groups.offsets)


def _training_data(dose: float, view: str, study: StudyDesign, training: TrainingParams) -> tuple[str, float | None]:
    """('view' or 'regime', the spacing S of regime groups or None) for the network of (dose, view)."""
    if study.views[view].gridsize > 1 and training.data == "regime":
        return "regime", study.spacing_threshold(view)
    return "view", None


def train_pinn(
    train_data: dict[str, Any], study: StudyDesign, training: TrainingParams, *, dose: float, view: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train the network of one (dose, view) on train-split data.

    ``train_data`` is the view's train scan view, or with ``training.data = 'regime'`` for a
    gridsize-2 view every position of the train split (its measurements): ``diffraction``
    (n, N, N) sqrt-counts, positions (n,) px, probe, intensity scale. Whole positions are
    held out for validation. Returns (checkpoint, history). The checkpoint holds the
    weights, the probe and the input normalisation (``weights_only``-loadable); a view with
    too few positions, data without photons, or a training whose loss stops being finite,
    gives a checkpoint without weights whose ``status``/``reason`` say why.
    """
    job = f"{dose_namespace(dose)}.{view}"
    mode, spacing = _training_data(dose, view, study, training)
    dataset = f"{dose_namespace(dose)}.train.measurements" if mode == "regime" else f"{job}.train.scan_view"
    problem = _scan_view(train_data, dataset, study, view, training, check_gridsize=mode == "view")
    gridsize = study.views[view].gridsize
    fields: dict[str, Any] = {
        "dose": dose, "view": view, "gridsize": gridsize, "neighbor_count": study.neighbor_count,
        "training_data": mode, "regime_spacing_px": spacing, "training_dataset": dataset,
        "n_positions": problem.n_positions, "training_parameters": training.model_dump(mode="json"),
    }
    reason = _not_trainable_reason(train_data if mode == "view" else {}, problem, gridsize)
    if reason is not None:
        return _skipped_training(train_data, fields, reason, job)

    device = resolve_device(training.device)
    seed = derive_seed(study.root_seed, "pinn", dose, view)
    rng = rng_for(study.root_seed, "pinn_grouping", dose, view)
    fitted, held_out = split_positions(problem.n_positions, training.validation_fraction, rng)
    try:
        groups = _groups_of(fitted, problem, gridsize, spacing, study, training, rng)
    except ValueError as exc:
        return _skipped_training(train_data, fields, f"no training group: {exc}", job)
    try:
        validation = _groups_of(held_out, problem, gridsize, spacing, study, training, rng) if held_out.size else None
    except ValueError:
        validation = None  # too few held-out positions for a group: the training loss is monitored
    config = PINNConfig(
        patch_size=study.patch_size, gridsize=gridsize, width=training.network.width,
        n_blocks=training.network.n_blocks, input_scale=input_scale_for(problem.counts),
        merge_epsilon=training.merge_epsilon, trainable_intensity_scale=training.trainable_intensity_scale,
    )
    candidates = [build_model(config, problem.probe, derive_seed(seed, "initialisation", k), str(device))
                  for k in range(training.initialisations)]
    logger.info("PINN %s: %s data, %d positions (%d held out), %d groups of %d, %d initialisation(s), %s", job, mode,
                problem.n_positions, held_out.size, len(groups), groups.group_size, len(candidates),
                describe_device(device))
    started = time.perf_counter()
    with peak_memory(device) as memory:
        model, history = fit(candidates, problem.counts, groups, validation, training, seed,
                             description=f"PINN {job}")
    fields.update(
        n_groups=len(groups), n_validation_positions=int(held_out.size), seed=seed, device=describe_device(device),
        runtime_s=time.perf_counter() - started, amplitude_factor=model.amplitude_factor, **memory,
    )
    history.update(fields)
    logger.info("PINN %s: %s after %d epochs (%s; best %s), validation loss %s, %.1f s", job, history["status"],
                history["epochs_run"], history["stop_reason"], history["best_epoch"], history["best_validation_loss"],
                fields["runtime_s"])
    summary = {key: value for key, value in history.items()
               if key not in ("epoch", "train_loss", "validation_loss", "learning_rate", "epoch_seconds")}
    metadata = add_stage(train_data.get("_metadata"), "training", summary)
    if history["status"] != "ok":
        return unusable_checkpoint(history["status"], history["reason"], metadata), history
    return to_checkpoint(model, metadata), history


def _skipped_training(train_data: dict[str, Any], fields: dict[str, Any], reason: str,
                      job: str) -> tuple[dict[str, Any], dict[str, Any]]:
    logger.warning("PINN %s skipped: %s", job, reason)
    history = {"status": "skipped", "reason": reason, **fields}
    return unusable_checkpoint("skipped", reason, add_stage(train_data.get("_metadata"), "training", history)), history


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
                             problem.canvas_shape, training.stitch_min_weight, training.inference_batch_size)
    seconds = result["predict_seconds"] + result["stitch_seconds"]
    record.update(
        n_groups=result["n_groups"], canvas_shape=list(problem.canvas_shape),
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
