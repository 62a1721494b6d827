"""Training loop: Adam on the diffraction-space loss, stopped on a measured criterion.

How long a freshly initialised network fits only the amplitude (and a poor phase) before
the phase comes depends on its initialisation; the loss keeps falling slowly on that
plateau. So several initialisations train the first epoch(s) on the same batches and the
best goes on; then training stops when the validation loss (whole held-out positions) has not
improved by ``min_improvement`` (relative) for ``early_stopping_patience`` epochs (never before
``min_epochs``: the plateau can be flat for several epochs), or at
``max_epochs``; the weights of the best validation epoch are kept. The history records every
epoch (losses, rate, seconds), the initialisations' losses and why training stopped; the
loss of the best flat object is recorded as the level of a network that learned nothing.
"""

from __future__ import annotations

import copy
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
from fly64_kedro.pinn.physics import far_field_counts
from fly64_kedro.records import finite_or_none


class _Batches:
    """Groups of a measured scan on the training device: counts, amplitudes, members, offsets."""

    def __init__(self, counts: torch.Tensor, groups: Groups, device: torch.device) -> None:
        self.counts = counts
        self.amplitudes = counts.sqrt()
        self.indices = torch.as_tensor(groups.indices, dtype=torch.int64).to(device)
        self.offsets = torch.as_tensor(groups.offsets, dtype=torch.int64).to(device)
        self.device = device

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def loss(self, model: PtychoPINN, group_ids: torch.Tensor | np.ndarray, loss_name: str) -> torch.Tensor:
        ids = torch.as_tensor(group_ids, dtype=torch.int64).to(self.device)
        members = self.indices[ids]
        return LOSSES[loss_name](model(self.amplitudes[members], self.offsets[ids]), self.counts[members])

    def flat_object_loss(self, model: PtychoPINN, loss_name: str, most: int = 512) -> float:
        """Loss of the best flat object a·1 (a fitted to the total counts, the Poisson optimum) on (the first
        ``most`` of) these groups."""
        members = self.indices[:most]
        flat = far_field_counts(torch.ones(model.probe.shape, dtype=model.probe.dtype, device=self.device), model.probe)
        counts = self.counts[members]
        scale = counts.sum(dtype=torch.float64) / (flat.sum(dtype=torch.float64) * counts[..., 0, 0].numel())
        expected = (flat * scale.to(FLOAT)).expand(counts.shape)
        return float(LOSSES[loss_name](expected, counts))


def evaluate(model: PtychoPINN, batches: _Batches, loss_name: str, batch_size: int) -> float:
    """Mean loss over every group of ``batches`` without gradients."""
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=batches.device)
    with torch.no_grad():
        for start in range(0, len(batches), batch_size):
            chunk = np.arange(start, min(start + batch_size, len(batches)))
            total += batches.loss(model, chunk, loss_name).double() * chunk.size
    return float(total) / len(batches)


class _Stopping:
    """The stopping rule of the module docstring, fed the monitored loss of each epoch."""

    def __init__(self, params: TrainingParams) -> None:
        self.params = params
        self.best, self.best_epoch, self.stale, self.epoch = math.inf, 0, 0, 0

    def update(self, epoch: int, monitored: float) -> bool:
        """Record an epoch; True when it is the best so far."""
        improved = monitored < self.best * (1 - self.params.min_improvement) if math.isfinite(self.best) else True
        if monitored < self.best:
            self.best, self.best_epoch = monitored, epoch
        self.stale = 0 if improved else self.stale + 1
        self.epoch = epoch
        return self.best_epoch == epoch

    @property
    def converged(self) -> bool:
        return self.stale >= self.params.early_stopping_patience and self.epoch >= self.params.min_epochs


def _optimizer(model: PtychoPINN, params: TrainingParams) -> torch.optim.Optimizer:
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=params.learning_rate)


def _train_epoch(model: PtychoPINN, optimizer: torch.optim.Optimizer, train: _Batches, order: np.ndarray,
                 groups_per_step: int, loss_name: str) -> float:
    """One pass over the groups ``order``; the mean training loss."""
    model.train()
    total = torch.zeros((), dtype=torch.float64, device=train.device)
    for start in range(0, order.size, groups_per_step):
        chunk = order[start:start + groups_per_step]
        loss = train.loss(model, chunk, loss_name)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach().double() * chunk.size
    return float(total) / order.size


def fit(
    candidates: list[PtychoPINN],
    counts: np.ndarray,
    train_groups: Groups,
    validation_groups: Groups | None,
    params: TrainingParams,
    seed: int,
    description: str = "training",
) -> tuple[PtychoPINN, dict[str, Any]]:
    """Train on groups of a scan's photon ``counts`` (n, N, N); return the trained model (best weights) and history.

    ``candidates`` are differently initialised models: each trains the first
    ``initialisation_epochs`` epochs on the same batches, and the one with the lowest
    monitored loss goes on (how soon a network leaves the amplitude-only plateau depends
    on its initialisation; a fixed single seed would make that luck). ``train_groups`` and
    ``validation_groups`` index the same ``counts`` and share no position. An epoch is a
    random draw of as many groups as make one pattern per training position (all groups for
    gridsize 1; a quarter of the distinct positions' worth of groups for gridsize 2), and a
    step takes ``batch_size`` patterns (``batch_size``/C groups), so epochs of every gridsize
    cost, show and step about the same. The validation loss (the training loss when there is
    no validation group) is monitored. Returns the history: per-epoch losses (train,
    validation), learning rates and seconds, the candidates' losses,
    ``flat_object_loss``, ``best_epoch``, ``stop_reason`` ('converged',
    'max_epochs' or 'non-finite loss'), ``status`` ('ok', or 'failed' with a ``reason``) and
    throughput in groups and patterns per second of optimisation.
    """
    device = next(candidates[0].parameters()).device
    rng = np.random.default_rng(seed)
    counts_tensor = torch.as_tensor(counts, dtype=FLOAT).to(device)
    train = _Batches(counts_tensor, train_groups, device)
    validation = _Batches(counts_tensor, validation_groups, device) if validation_groups is not None and len(
        validation_groups) else None
    monitored_batches = validation if validation is not None else train
    optimizers = [_optimizer(candidate, params) for candidate in candidates]
    stopping = _Stopping(params)
    # an epoch shows the network as many patterns as there are training positions, whatever the group size:
    # gridsize 2 draws that many patterns' worth of groups from its pool each epoch
    per_epoch = math.ceil(np.unique(train_groups.indices).size / train_groups.group_size)
    groups_per_step = max(1, round(params.batch_size / train_groups.group_size))  # batch_size counts patterns
    history: dict[str, Any] = {"epoch": [], "train_loss": [], "validation_loss": [], "learning_rate": [], "epoch_seconds": [], "status": "ok", "reason": None,
                               "stop_reason": "max_epochs", "candidate_losses": [],
                               "flat_object_loss": monitored_batches.flat_object_loss(candidates[0], params.loss),
                               "n_train_groups": len(train), "groups_per_epoch": per_epoch,
                               "groups_per_step": groups_per_step,
                               "n_validation_groups": len(validation) if validation is not None else 0}
    model, optimizer = candidates[0], optimizers[0]
    scheduler = None
    best_state = copy.deepcopy(model.state_dict())
    train_seconds = 0.0
    progress = tqdm(range(params.max_epochs), desc=description, unit="epoch", leave=False, dynamic_ncols=True,
                    disable=None if params.progress_bar else True)  # None: on a terminal only, not in log files
    for epoch in progress:
        started = time.perf_counter()
        order = rng.permutation(len(train))[:per_epoch]
        if epoch < params.initialisation_epochs and len(candidates) > 1:
            losses = [_train_epoch(c, o, train, order, groups_per_step, params.loss) for c, o in
                      zip(candidates, optimizers)]
            monitors = [evaluate(c, validation, params.loss, params.inference_batch_size) if validation else loss
                        for c, loss in zip(candidates, losses)]
            history["candidate_losses"].append([finite_or_none(value) for value in monitors])
            chosen = int(np.nanargmin(np.where(np.isfinite(monitors), monitors, np.nan))) if np.isfinite(
                monitors).any() else 0
            model, optimizer, train_loss = candidates[chosen], optimizers[chosen], losses[chosen]
            history["chosen_candidate"] = chosen
            if epoch + 1 == params.initialisation_epochs:
                candidates, optimizers = [model], [optimizer]  # the others are let go
        else:
            train_loss = _train_epoch(model, optimizer, train, order, groups_per_step, params.loss)
        train_seconds += time.perf_counter() - started
        if scheduler is None and params.lr_schedule == "plateau" and len(candidates) == 1:
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="min", factor=params.lr_factor, patience=params.lr_patience, min_lr=params.lr_min)
        validation_loss = (evaluate(model, validation, params.loss, params.inference_batch_size)
                           if validation is not None else None)
        monitored = train_loss if validation_loss is None else validation_loss
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(finite_or_none(train_loss))
        history["validation_loss"].append(finite_or_none(validation_loss))
        history["learning_rate"].append(optimizer.param_groups[0]["lr"])
        history["epoch_seconds"].append(time.perf_counter() - started)
        if not math.isfinite(monitored):
            history.update(status="failed", stop_reason="non-finite loss",
                           reason=f"loss became non-finite ({monitored}) at epoch {epoch + 1}")
            break
        progress.set_postfix(train=f"{train_loss:.4g}", val="-" if validation_loss is None else f"{validation_loss:.4g}")
        if stopping.update(epoch + 1, monitored):
            best_state = copy.deepcopy(model.state_dict())
        if scheduler is not None:
            scheduler.step(monitored)
        if stopping.converged:
            history["stop_reason"] = "converged"
            break
    progress.close()
    if history["status"] == "ok":
        model.load_state_dict(best_state)
    n_epochs = len(history["epoch"])
    groups_seen = n_epochs * min(per_epoch, len(train))
    history.update(
        epochs_run=n_epochs,
        best_epoch=stopping.best_epoch or None,
        best_validation_loss=finite_or_none(stopping.best) if validation is not None else None,
        final_train_loss=history["train_loss"][-1] if n_epochs else None,
        final_validation_loss=history["validation_loss"][-1] if n_epochs else None,
        train_seconds=train_seconds,
        throughput_groups_per_s=groups_seen / train_seconds if train_seconds > 0 else None,
        throughput_patterns_per_s=groups_seen * train_groups.group_size / train_seconds if train_seconds > 0 else None,
    )
    return model, history
