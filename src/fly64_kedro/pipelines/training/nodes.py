"""Training nodes: one PINN per (dose, view), inference and stitching per (dose, view, split).

Thin wrappers of ``fly64_kedro.pinn``: they pick the gridsize and training data of the view,
train or predict, and package checkpoints, object estimates and job records. The network
only ever sees measured counts, positions and the probe; never the ground truth.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import numpy as np

from fly64_kedro.contracts import InputDataError, Measurements, ObjectEstimate, ScanView
from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.study import Cell
from fly64_kedro.parameters.training import TrainingParams
from fly64_kedro.physics.geometry import canvas_for_positions
from fly64_kedro.physics.seeds import derive_seed, rng_for
from fly64_kedro.pinn.grouping import (
    Groups,
    group_size,
    regime_groups,
    split_positions,
    training_groups,
)
from fly64_kedro.pinn.inference import reconstruct
from fly64_kedro.pinn.network import (
    PINNConfig,
    PtychoPINN,
    build_model,
    from_checkpoint,
    input_scale_for,
    to_checkpoint,
    unusable_checkpoint,
)
from fly64_kedro.pinn.training import fit
from fly64_kedro.provenance import add_stage
from fly64_kedro.runtime import describe_device, peak_memory, resolve_device

logger = logging.getLogger(__name__)


def _too_few_positions(n_positions: int, gridsize: int) -> str | None:
    """Why a scan cannot feed the network (fewer positions than one group needs), or None."""
    needed = group_size(gridsize)
    return None if n_positions >= needed else f"{n_positions} position(s); a gridsize-{gridsize} group needs {needed}"


def _not_trainable_reason(data: Measurements, gridsize: int) -> str | None:
    """Why the data cannot train the network (too few positions, flagged by the selection, no photons), or None."""
    if isinstance(data, ScanView) and not data.telemetry.sufficient_for["pinn"]:
        return f"the selection marked this view insufficient for the PINN ({data.n_positions} positions)"
    if data.n_positions and not data.diffraction.any():
        return f"the {data.n_positions} diffraction patterns hold no photons (every count is 0)"
    return _too_few_positions(data.n_positions, gridsize)


def _groups_of(subset: np.ndarray, data: Measurements, gridsize: int, spacing: float | None, study: StudyDesign,
               training: TrainingParams, rng: np.random.Generator) -> Groups:
    """Groups of the positions ``subset`` (indices into the data's positions), as indices into all of them.

    With ``spacing`` the groups are drawn in the view's regime (members ≥ S apart), else
    from each anchor's K nearest neighbours.
    """
    y, x = data.ycoords[subset], data.xcoords[subset]
    if spacing is not None:
        groups = regime_groups(y, x, gridsize, spacing, training.groups_per_anchor, rng)
    else:
        groups = training_groups(y, x, gridsize, study.neighbor_count, training.groups_per_anchor, rng)
    return Groups(subset[groups.indices], groups.offsets)


def training_data(cell: Cell, study: StudyDesign, data: str) -> tuple[str, str]:
    """('view' or 'regime', the dataset the network of ``cell`` (dose, view) trains on), for ``training.data``."""
    if study.views[cell.view].gridsize > 1 and data == "regime":
        return "regime", Cell(cell.dose).dataset("train.measurements")
    return "view", cell.dataset("train.scan_view")


def start_network(cell: Cell, study: StudyDesign, training: TrainingParams) -> str | None:
    """The trained network the network of ``cell`` (dose, view) starts from, or None (a fresh initialisation).

    With ``training.gridsize2_start = 'gs1'`` a gridsize-2 network starts from the gridsize-1
    network of the same dose on the study's gs1 reference view.
    """
    if study.views[cell.view].gridsize > 1 and training.gridsize2_start == "gs1":
        return cell.with_view(study.gs1_reference_view).dataset("pinn_model")
    return None


def _started_from(checkpoint: dict[str, Any], name: str, gridsize: int, probe: np.ndarray,
                  device: str) -> PtychoPINN:
    """A gridsize-``gridsize`` model holding the weights (and input normalisation) of a trained gridsize-1 one.

    ``probe`` (N, N), in counts units of the data it will train on, is the model's physics.
    """
    trained = (checkpoint.get("config") or {}).get("gridsize")
    if trained != 1:
        raise InputDataError(name, "config.gridsize", "1 (a gridsize-1 network to start from)", trained)
    start = from_checkpoint(checkpoint, device)
    model = PtychoPINN(replace(start.config, gridsize=gridsize), probe, device)
    model.load_state_dict({**start.state_dict(), "probe": model.probe})
    return model


def train_pinn(
    train_data: Measurements, study: StudyDesign, training: TrainingParams, start_model: dict[str, Any] | None = None,
    *, cell: Cell,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train the network of one (dose, view) cell on train-split data.

    ``train_data`` is the view's train scan view, or with ``training.data = 'regime'`` for a
    gridsize-2 view every position of the train split (its measurements). Whole positions
    are held out for validation. ``start_model`` is the checkpoint of the network this one
    starts from (``start_network``; then at most ``fine_tune_epochs``), else it starts from
    a fresh initialisation. Returns (checkpoint, history). The checkpoint holds the
    weights, the probe and the input normalisation (``weights_only``-loadable); a view with
    too few positions, data without photons, a start network that was skipped or failed, or
    a training whose loss stops being finite, gives a checkpoint without weights whose
    ``status``/``reason`` say why.
    """
    mode, dataset = training_data(cell, study, training.data)
    start = start_network(cell, study, training)
    gridsize = study.views[cell.view].gridsize
    if isinstance(train_data, ScanView) and train_data.telemetry.gridsize != gridsize:
        raise InputDataError(dataset, "_metadata.gridsize", f"{gridsize} (study.views.{cell.view}.gridsize)",
                             train_data.telemetry.gridsize)
    spacing = study.spacing_threshold(cell.view) if mode == "regime" else None
    fields: dict[str, Any] = {
        "dose": cell.dose, "view": cell.view, "gridsize": gridsize, "neighbor_count": study.neighbor_count,
        "training_data": mode, "regime_spacing_px": spacing, "training_dataset": dataset,
        "n_positions": train_data.n_positions, "started_from": start,
        "training_parameters": training.model_dump(mode="json"),
    }
    reason = _not_trainable_reason(train_data, gridsize)
    if reason is None and start is not None and (start_model or {}).get("status") != "ok":
        reason = f"the network it starts from, {start}, is {(start_model or {}).get('status')}: " \
                 f"{(start_model or {}).get('reason')}"
    if reason is not None:
        return _skipped_training(train_data, fields, reason, cell)

    device = resolve_device(training.device)
    seed = derive_seed(study.root_seed, "pinn", cell.dose, cell.view)
    rng = rng_for(study.root_seed, "pinn_grouping", cell.dose, cell.view)
    fitted, held_out = split_positions(train_data.n_positions, training.validation_fraction, rng)
    try:
        groups = _groups_of(fitted, train_data, gridsize, spacing, study, training, rng)
    except ValueError as exc:
        return _skipped_training(train_data, fields, f"no training group: {exc}", cell)
    try:
        validation = _groups_of(held_out, train_data, gridsize, spacing, study, training, rng) if held_out.size \
            else None
    except ValueError:
        validation = None  # too few held-out positions for a group: the training loss is monitored
    counts = train_data.counts
    if start is None:
        config = PINNConfig(
            patch_size=study.patch_size, gridsize=gridsize, width=training.network.width,
            n_blocks=training.network.n_blocks, input_scale=input_scale_for(counts),
            merge_epsilon=training.merge_epsilon, trainable_intensity_scale=training.trainable_intensity_scale,
            phase_head=training.network.phase_head,
        )
        candidates = [build_model(config, train_data.scaled_probe, derive_seed(seed, "initialisation", k),
                                  str(device)) for k in range(training.initialisations)]
        schedule = training
    else:
        candidates = [_started_from(start_model, start, gridsize, train_data.scaled_probe, str(device))]
        schedule = training.model_copy(update={"max_epochs": training.fine_tune_epochs, "min_epochs": 1,
                                               "initialisations": 1})
    logger.info("PINN %s: %s data, %d positions (%d held out), %d groups of %d, %d initialisation(s), %s", cell, mode,
                train_data.n_positions, held_out.size, len(groups), groups.group_size, len(candidates),
                describe_device(device))
    started = time.perf_counter()
    with peak_memory(device) as memory:
        model, history = fit(candidates, counts, groups, validation, schedule, seed, description=f"PINN {cell}")
    fields.update(
        n_groups=len(groups), n_validation_positions=int(held_out.size), seed=seed, device=describe_device(device),
        runtime_s=time.perf_counter() - started, amplitude_factor=model.amplitude_factor, **memory,
    )
    history.update(fields)
    logger.info("PINN %s: %s after %d epochs (%s; best %s), validation loss %s, %.1f s", cell, history["status"],
                history["epochs_run"], history["stop_reason"], history["best_epoch"], history["best_validation_loss"],
                fields["runtime_s"])
    summary = {key: value for key, value in history.items()
               if key not in ("epoch", "train_loss", "validation_loss", "learning_rate", "epoch_seconds")}
    metadata = add_stage(train_data.metadata, "training", summary)
    if history["status"] != "ok":
        return unusable_checkpoint(history["status"], history["reason"], metadata), history
    return to_checkpoint(model, metadata), history


def _skipped_training(train_data: Measurements, fields: dict[str, Any], reason: str,
                      cell: Cell) -> tuple[dict[str, Any], dict[str, Any]]:
    logger.warning("PINN %s skipped: %s", cell, reason)
    history = {"status": "skipped", "reason": reason, **fields}
    return unusable_checkpoint("skipped", reason, add_stage(train_data.metadata, "training", history)), history


def _infer(view: ScanView, checkpoint: dict[str, Any], model_name: str, training: TrainingParams,
           fields: dict[str, Any]) -> tuple[ObjectEstimate, dict[str, Any]]:
    """(object estimate, record) of one model (``model_name``, gridsize ``fields['gridsize']``) on one scan view."""
    record: dict[str, Any] = {**fields, "model": model_name, "status": "ok", "reason": None}
    trained_gridsize = (checkpoint.get("config") or {}).get("gridsize")
    if checkpoint.get("status") == "ok" and trained_gridsize != fields["gridsize"]:
        raise InputDataError(model_name, "config.gridsize", f"{fields['gridsize']} (the study's gridsize of its view)",
                             trained_gridsize)
    if checkpoint.get("status") != "ok":
        record.update(status="failed" if checkpoint.get("status") == "failed" else "skipped",
                      reason=f"model {model_name} is {checkpoint.get('status')}: {checkpoint.get('reason')}")
    elif (reason := _too_few_positions(view.n_positions, fields["gridsize"])) is not None:
        record.update(status="skipped", reason=reason)
    if record["status"] != "ok":
        logger.warning("PINN inference %s with %s %s: %s", fields["job"], model_name, record["status"], record["reason"])
        metadata = add_stage(view.metadata, "pinn_inference", {"status": record["status"], "reason": record["reason"]})
        return ObjectEstimate.unusable(record["status"], record["reason"], metadata,
                                       coverage=np.zeros((0, 0), np.float32)), record

    device = resolve_device(training.device)
    model = from_checkpoint(checkpoint, str(device))
    origin, shape = canvas_for_positions(view.ycoords, view.xcoords, view.patch_size, training.canvas_margin_px)
    with peak_memory(device) as memory:
        result = reconstruct(model, view.counts, view.ycoords, view.xcoords, origin, shape,
                             training.stitch_min_weight, training.inference_batch_size)
    seconds = result["predict_seconds"] + result["stitch_seconds"]
    record.update(
        n_groups=result["n_groups"], canvas_shape=list(shape),
        predict_seconds=result["predict_seconds"], stitch_seconds=result["stitch_seconds"],
        throughput_patterns_per_s={"predict": view.n_positions / result["predict_seconds"],
                                   "predict_and_stitch": view.n_positions / seconds},
        covered_fraction=float((result["coverage"] > 0).mean()),
        amplitude_factor=model.amplitude_factor, device=describe_device(device), **memory,
    )
    metadata = add_stage(view.metadata, "pinn_inference", record)
    return ObjectEstimate(result["object"], origin, "ok", None, metadata, coverage=result["coverage"]), record


def reconstruct_with_pinn(
    scan_view: ScanView,
    model: dict[str, Any],
    study: StudyDesign,
    training: TrainingParams,
    gs1_model: dict[str, Any] | None = None,
    *,
    cell: Cell,
) -> dict[str, Any]:
    """Predict and stitch the object of one (dose, view, split) cell with the view's network.

    Returns ``object`` (``ObjectEstimate``: the stitched object (H, W) complex64 on the
    view's canvas and its ``coverage`` (H, W) float32) and ``record`` (JSON job record:
    status, reason, n_positions, throughput in patterns/s with and without stitching, …).
    With ``gs1_model`` (the gridsize-1 network of the study's gs1 reference view at the same
    dose) also ``gs1_object``, that network run on this view's positions, summarised under
    the record's ``gs1`` key.
    """
    fields = {"job": str(cell), "dose": cell.dose, "view": cell.view, "split": cell.split, "method": "pinn",
              "gridsize": study.views[cell.view].gridsize, "n_positions": scan_view.n_positions,
              "input_dataset": scan_view.metadata.get("_loaded_from")}
    network = Cell(cell.dose, cell.view)
    obj, record = _infer(scan_view, model, network.dataset("pinn_model"), training, fields)
    outputs = {"object": obj}
    if gs1_model is not None:
        reference = study.gs1_reference_view
        gs1_obj, gs1_record = _infer(scan_view, gs1_model, network.with_view(reference).dataset("pinn_model"),
                                     training, {**fields, "method": "pinn_gs1",
                                                "gridsize": study.views[reference].gridsize})
        outputs["gs1_object"] = gs1_obj
        record["gs1"] = gs1_record
    outputs["record"] = record
    return outputs
