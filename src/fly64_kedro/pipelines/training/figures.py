"""Training curves: train and validation loss per epoch of every (dose, view) network."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure


def plot_training_curves(**histories: dict[str, Any]) -> Figure:
    """One panel per network (rows: doses, columns: views) with its train and validation loss per epoch.

    ``histories`` maps '<dose namespace>.<view>' → training history. Each panel also shows the
    loss of the best flat object (what a network that learned nothing would reach), the best
    epoch (whose weights were kept) and why training stopped.
    """
    doses = list(dict.fromkeys(name.split(".")[0] for name in histories))
    views = list(dict.fromkeys(name.split(".", 1)[1] for name in histories))
    figure = Figure(figsize=(4.2 * len(views), 3.2 * len(doses)), constrained_layout=True)
    axes = np.atleast_2d(figure.subplots(len(doses), len(views), squeeze=False))
    for name, history in histories.items():
        dose, view = name.split(".", 1)
        axis = axes[doses.index(dose), views.index(view)]
        axis.set_title(f"{dose} {view}", fontsize=9)
        if not history.get("epoch"):
            axis.text(0.5, 0.5, f"{history.get('status')}:\n{history.get('reason')}", ha="center", va="center",
                      fontsize=7, wrap=True, transform=axis.transAxes)
            axis.set_axis_off()
            continue
        epochs = history["epoch"]
        axis.plot(epochs, history["train_loss"], "o-", ms=3, label="train")
        if any(value is not None for value in history["validation_loss"]):
            axis.plot(epochs, history["validation_loss"], "s-", ms=3, label="validation")
        axis.axhline(history["flat_object_loss"], color="0.5", ls=":", label="flat object")
        if history.get("best_epoch"):
            axis.axvline(history["best_epoch"], color="C3", lw=0.8, label="best (kept)")
        axis.set_xlabel(f"epoch — {history.get('stop_reason')}, {history.get('training_data', 'view')} data",
                        fontsize=8)
        axis.set_ylabel(f"{history.get('training_parameters', {}).get('loss', '')} loss", fontsize=8)
        axis.legend(fontsize=6)
    figure.suptitle("training curves (validation: held-out train positions)")
    return figure
