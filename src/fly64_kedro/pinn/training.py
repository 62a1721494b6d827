"""Training loop: Adam on the diffraction-space loss, plateau schedule, optional early stop."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from fly64_kedro.parameters.training import TrainingParams
from fly64_kedro.pinn.grouping import Groups
from fly64_kedro.pinn.loss import LOSSES
from fly64_kedro.pinn.network import FLOAT, PtychoPINN

IMPROVEMENT_TOLERANCE = 1e-4
"""Relative decrease of the monitored loss that counts as an improvement for early stopping
(the same as ReduceLROnPlateau's default threshold, so both agree on what a stale epoch is)."""


def split_groups(n_groups: int, validation_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) group indices; at least one group on each side when the fraction is > 0."""
    order = rng.permutation(n_groups)
    n_validation = round(validation_fraction * n_groups)
    if validation_fraction > 0 and n_groups >= 2:
        n_validation = min(max(n_validation, 1), n_groups - 1)
    else:
        n_validation = 0
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])


def _finite_or_none(value: float | None) -> float | None:
    """JSON-safe loss value: non-finite losses are recorded as null."""
    return value if value is not None and math.isfinite(value) else None


class _Batches:
    """Groups of a measured scan on the training device: counts, amplitudes, members, offsets."""

    def __init__(self, counts: np.ndarray, groups: Groups, device: torch.device) -> None:
        self.counts = torch.as_tensor(counts, dtype=FLOAT).to(device)
        self.amplitudes = self.counts.sqrt()
        self.indices = torch.as_tensor(groups.indices, dtype=torch.int64).to(device)
        self.offsets = torch.as_tensor(groups.offsets, dtype=torch.int64).to(device)
        self.device = device

    def loss(self, model: PtychoPINN, group_ids: np.ndarray, loss_name: str) -> torch.Tensor:
        ids = torch.as_tensor(group_ids, dtype=torch.int64).to(self.device)
        members = self.indices[ids]
        return LOSSES[loss_name](model(self.amplitudes[members], self.offsets[ids]), self.counts[members])


def evaluate(model: PtychoPINN, batches: _Batches, group_ids: np.ndarray, loss_name: str, batch_size: int) -> float:
    """Mean loss over ``group_ids`` without gradients."""
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=batches.device)
    with torch.no_grad():
        for start in range(0, group_ids.size, batch_size):
            chunk = group_ids[start:start + batch_size]
            total += batches.loss(model, chunk, loss_name).double() * chunk.size
    return float(total) / group_ids.size


def fit(
    model: PtychoPINN,
    counts: np.ndarray,
    groups: Groups,
    params: TrainingParams,
    seed: int,
    description: str = "training",
) -> dict[str, Any]:
    """Train ``model`` in place on the groups of a scan's photon ``counts`` (n, N, N).

    The validation loss (the training loss when no group is held out) drives the plateau
    schedule and early stopping. Returns the history: per-epoch losses, learning rates and
    seconds, plus ``status`` ('ok', or 'failed' with a ``reason`` when the loss stops being
    finite) and throughput in groups and patterns per second of optimisation.
    """
    device = next(model.parameters()).device
    rng = np.random.default_rng(seed)
    batches = _Batches(counts, groups, device)
    train_ids, validation_ids = split_groups(len(groups), params.validation_fraction, rng)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=params.learning_rate)
    scheduler = (torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=params.lr_factor, patience=params.lr_patience, min_lr=params.lr_min)
        if params.lr_schedule == "plateau" else None)
    history: dict[str, Any] = {"epoch": [], "train_loss": [], "validation_loss": [], "learning_rate": [],
                               "epoch_seconds": [], "status": "ok", "reason": None, "stopped_early": False,
                               "n_train_groups": int(train_ids.size), "n_validation_groups": int(validation_ids.size)}
    best, stale, train_seconds = math.inf, 0, 0.0
    progress = tqdm(range(params.epochs), desc=description, unit="epoch", leave=False, dynamic_ncols=True,
                    disable=None if params.progress_bar else True)  # None: on a terminal only, not in log files
    for epoch in progress:
        started = time.perf_counter()
        model.train()
        order = rng.permutation(train_ids)
        total = torch.zeros((), dtype=torch.float64, device=device)
        for start in range(0, order.size, params.batch_size):
            chunk = order[start:start + params.batch_size]
            loss = batches.loss(model, chunk, params.loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach().double() * chunk.size
        train_loss = float(total) / order.size
        train_seconds += time.perf_counter() - started
        validation_loss = (evaluate(model, batches, validation_ids, params.loss, params.inference_batch_size)
                           if validation_ids.size else None)
        monitored = train_loss if validation_loss is None else validation_loss
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(_finite_or_none(train_loss))
        history["validation_loss"].append(_finite_or_none(validation_loss))
        history["learning_rate"].append(optimizer.param_groups[0]["lr"])
        history["epoch_seconds"].append(time.perf_counter() - started)
        if not math.isfinite(monitored):
            history.update(status="failed", reason=f"loss became non-finite ({monitored}) at epoch {epoch + 1}")
            break
        progress.set_postfix(train=f"{train_loss:.4g}", val="-" if validation_loss is None else f"{validation_loss:.4g}")
        if scheduler is not None:
            scheduler.step(monitored)
        if monitored < best - IMPROVEMENT_TOLERANCE * abs(best if math.isfinite(best) else monitored):
            best, stale = monitored, 0
        else:
            stale += 1
        if params.early_stopping_patience is not None and stale >= params.early_stopping_patience:
            history["stopped_early"] = True
            break
    progress.close()
    n_epochs = len(history["epoch"])
    groups_seen = n_epochs * train_ids.size
    history.update(
        epochs_run=n_epochs,
        final_train_loss=history["train_loss"][-1] if n_epochs else None,
        final_validation_loss=history["validation_loss"][-1] if n_epochs else None,
        train_seconds=train_seconds,
        throughput_groups_per_s=groups_seen / train_seconds if train_seconds > 0 else None,
        throughput_patterns_per_s=groups_seen * groups.group_size / train_seconds if train_seconds > 0 else None,
    )
    return history
