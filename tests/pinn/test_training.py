"""Training: the loss falls, the phase is learned from diffraction alone, runs are reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pinn_support import (
    one_torch_thread,
    phase_correlation,
    synthetic_scan,
    training_params,
)

from fly64_kedro.pinn.grouping import Groups, split_positions, training_groups
from fly64_kedro.pinn.network import PINNConfig, build_model, input_scale_for
from fly64_kedro.pinn.training import fit

N = 16

pytestmark = pytest.mark.usefixtures(one_torch_thread.__name__)


def _patch_phase_correlation(model: torch.nn.Module, counts: np.ndarray, truth_patches: np.ndarray) -> float:
    """Mean over patches of the phase correlation in the illuminated centre, each patch's global phase removed.

    Gridsize 1 sees one pattern at a time, whose global phase no measurement fixes, so each
    predicted patch is compared after its own global phase offset.
    """
    with torch.no_grad():
        predicted = model.object_patches(torch.from_numpy(counts).sqrt()[:, None]).numpy()[:, 0]
    centre = slice(N // 4, N - N // 4)  # the probe disc has diameter N/2
    mask = np.ones((N // 2, N // 2), bool)
    return float(np.mean([phase_correlation(p[centre, centre], t[centre, centre], mask)
                          for p, t in zip(predicted, truth_patches, strict=True)]))


def _split_groups(y: np.ndarray, x: np.ndarray, gridsize: int, fraction: float, seed: int) -> tuple[Groups, Groups | None]:
    """Training and validation groups of disjoint positions, as the training node builds them."""
    rng = np.random.default_rng(seed)
    fitted, held_out = split_positions(y.size, fraction, rng)

    def groups(subset: np.ndarray) -> Groups:
        found = training_groups(y[subset], x[subset], gridsize, 7, 2, rng)
        return Groups(subset[found.indices], found.offsets)

    return groups(fitted), groups(held_out) if held_out.size else None


def test_short_high_dose_training_lowers_the_loss_and_recovers_the_phase() -> None:
    """Threshold 0.45: the untrained network scores about 0 (asserted below, < 0.15); a phase
    correlation of ~0.4 is what LSQML reaches at 1e3 photons on a similar object (pty-chi 2.2
    measured on this machine), and 0.45 keeps a margin below the 0.59–0.63 measured for
    this case over seeds and thread counts (the value is stable; the stitched value is not,
    because each gridsize-1 patch has its own free phase offset)."""
    scan = synthetic_scan(patch_size=N, object_size=64, n_positions=150, dose=1e5)
    params = training_params(batch_size=8, max_epochs=20, early_stopping_patience=20,
                             network={"width": 16, "n_blocks": 2})
    groups, validation = _split_groups(scan.ycoords, scan.xcoords, 1, 0.1, 0)
    config = PINNConfig(N, 1, 16, 2, input_scale_for(scan.counts), 1e-3, True)
    model = build_model(config, scan.probe_counts, seed=0, device="cpu")
    untrained = _patch_phase_correlation(model, scan.counts, scan.patches)
    model, history = fit([model], scan.counts, groups, validation, params, seed=0)
    trained = _patch_phase_correlation(model, scan.counts, scan.patches)
    assert history["status"] == "ok" and history["epochs_run"] == 20
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert min(history["validation_loss"]) < 0.95 * history["flat_object_loss"]  # off the flat-object level
    assert abs(untrained) < 0.15
    assert trained > 0.45, f"phase correlation {trained:.3f} (untrained {untrained:.3f})"


@pytest.mark.parametrize("gridsize", [1, 2])
def test_same_seed_on_cpu_gives_the_same_weights(gridsize: int) -> None:
    scan = synthetic_scan(patch_size=N, object_size=64, n_positions=40, dose=1e4)
    params = training_params(batch_size=4, max_epochs=2, network={"width": 4, "n_blocks": 2})
    weights = []
    for _ in range(2):
        groups, validation = _split_groups(scan.ycoords, scan.xcoords, gridsize, 0.2, 1)
        config = PINNConfig(N, gridsize, 4, 2, input_scale_for(scan.counts), 1e-3, True)
        model = build_model(config, scan.probe_counts, seed=7, device="cpu")
        model, history = fit([model], scan.counts, groups, validation, params, seed=7)
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
    assert history["train_loss"] == [l for l in history["train_loss"] if l is not None]


def test_non_finite_loss_ends_the_training_as_failed() -> None:
    scan = synthetic_scan(patch_size=N, object_size=64, n_positions=20)
    counts = scan.counts.copy()
    counts[3, 0, 0] = np.inf
    params = training_params(batch_size=4, max_epochs=3, validation_fraction=0.0, network={"width": 4, "n_blocks": 2})
    groups = training_groups(scan.ycoords, scan.xcoords, 1, 7, 1, np.random.default_rng(0))
    model = build_model(PINNConfig(N, 1, 4, 2, 0.1, 1e-3, True), scan.probe_counts, 0, "cpu")
    model, history = fit([model], counts, groups, None, params, seed=0)
    assert history["status"] == "failed" and "non-finite" in history["reason"]
    assert history["stop_reason"] == "non-finite loss"
    assert history["epochs_run"] == 1 and history["train_loss"] == [None]


def test_stopping_when_stale_keeps_the_best_weights() -> None:
    """Learning, then stale: training stops after ``early_stopping_patience`` stale epochs, and the model
    that comes back is the best validation epoch's."""
    scan = synthetic_scan(patch_size=N, object_size=64, n_positions=60, dose=1e5)
    groups, validation = _split_groups(scan.ycoords, scan.xcoords, 1, 0.2, 0)
    params = training_params(batch_size=4, max_epochs=40, learning_rate=3e-3, early_stopping_patience=2,
                             min_improvement=0.2, network={"width": 4, "n_blocks": 2})
    model = build_model(PINNConfig(N, 1, 4, 2, input_scale_for(scan.counts), 1e-3, True), scan.probe_counts, 0, "cpu")
    model, history = fit([model], scan.counts, groups, validation, params, seed=0)
    assert history["stop_reason"] == "converged"
    assert history["epochs_run"] < 40
    best = history["best_epoch"]
    assert history["validation_loss"][best - 1] == min(history["validation_loss"])
    from fly64_kedro.pinn.training import (  # the restored weights score the best loss
        _Batches,
        evaluate,
    )
    batches = _Batches(torch.as_tensor(scan.counts), validation, torch.device("cpu"))
    assert evaluate(model, batches, "poisson", 64) == pytest.approx(min(history["validation_loss"]), rel=1e-5)


def test_no_early_stop_before_min_epochs() -> None:
    """The same stale training with ``min_epochs`` beyond the epoch it stopped at goes on to ``min_epochs``."""
    scan = synthetic_scan(patch_size=N, object_size=64, n_positions=60, dose=1e5)
    groups, validation = _split_groups(scan.ycoords, scan.xcoords, 1, 0.2, 0)
    config = PINNConfig(N, 1, 4, 2, input_scale_for(scan.counts), 1e-3, True)
    runs = {}
    for min_epochs in (1, 12):
        params = training_params(batch_size=4, max_epochs=40, learning_rate=3e-3, early_stopping_patience=2,
                                 min_improvement=0.2, min_epochs=min_epochs, network={"width": 4, "n_blocks": 2})
        model = build_model(config, scan.probe_counts, 0, "cpu")
        runs[min_epochs] = fit([model], scan.counts, groups, validation, params, seed=0)[1]
    assert runs[1]["stop_reason"] == "converged" and runs[1]["epochs_run"] < 12
    assert runs[12]["stop_reason"] == "converged" and runs[12]["epochs_run"] == 12


def test_validation_holds_out_whole_positions() -> None:
    rng = np.random.default_rng(0)
    train, validation = split_positions(100, 0.1, rng)
    assert validation.size == 10 and np.union1d(train, validation).size == 100
    assert np.intersect1d(train, validation).size == 0
    assert split_positions(3, 0.05, rng)[1].size == 1                 # at least one held out
    assert split_positions(1, 0.05, rng)[1].size == 0                 # never everything
    assert split_positions(10, 0.0, rng)[1].size == 0
    scan = synthetic_scan(patch_size=N, object_size=64, n_positions=60)
    groups, held = _split_groups(scan.ycoords, scan.xcoords, 2, 0.2, 3)
    assert not set(groups.indices.ravel()) & set(held.indices.ravel())  # no position in both


def test_the_best_of_several_initialisations_goes_on() -> None:
    """Three initialisations train one epoch on the same batches; the one with the lowest validation loss continues."""
    scan = synthetic_scan(patch_size=N, object_size=64, n_positions=40)
    groups, validation = _split_groups(scan.ycoords, scan.xcoords, 1, 0.2, 0)
    params = training_params(batch_size=4, max_epochs=3, initialisations=3, initialisation_epochs=1,
                             network={"width": 4, "n_blocks": 2})
    config = PINNConfig(N, 1, 4, 2, input_scale_for(scan.counts), 1e-3, True)
    candidates = [build_model(config, scan.probe_counts, seed, "cpu") for seed in (1, 2, 3)]
    model, history = fit(candidates, scan.counts, groups, validation, params, seed=0)
    first = history["candidate_losses"][0]
    assert len(first) == 3 and history["chosen_candidate"] == int(np.argmin(first))
    assert model is candidates[history["chosen_candidate"]]
    assert history["validation_loss"][0] == pytest.approx(min(first))
    assert history["epochs_run"] == 3
