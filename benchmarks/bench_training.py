"""PINN throughput: training, inference with and without stitching, and LSQML on the same data.

Synthetic scans at N = 64 (object and scan as conf/base) and N = 128 (as conf/paper), Poisson
counts at 1e4 photons, the spatial train/test split. Networks are untrained (throughput
does not depend on the weights) and built from the environments' parameters:

* training: ``pinn.training.fit`` for one epoch on the train split (one network, no
  validation groups; the epoch draws one pattern per position from the first
  ``--max-train-groups`` groups), groups (and patterns = groups·C) per second of
  optimisation, median over repeats, for the quick network
  (conf/base) at gridsize 1 and 2 and for the original networks (conf/paper: N = 128;
  [32, 64, 128]·2 filters at N = 64);
* inference: ``pinn.inference.reconstruct`` on the test split, patterns per second of
  prediction alone and of prediction plus stitching, median over repeats after a warm-up;
* LSQML: ``reconstruction.run_engine`` with ``ENGINES["lsqml"]`` (pty-chi) on the same test split
  with the configured options (conf/base/parameters_reconstruction.yml), patterns per second over the
  epochs (the paper's definition) and over task build plus epochs; then the ratio of PINN
  inference to LSQML, next to the overlap-free paper's 36× (2.6k vs 71 patterns/s, one GPU,
  128², excluding stitching).

    OMP_NUM_THREADS=2 python benchmarks/bench_training.py [--device cpu|cuda] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from fly64_kedro.parameters.reconstruction import ReconstructionParams
from fly64_kedro.parameters.training import TrainingParams
from fly64_kedro.physics import forward, ground_truth, scan
from fly64_kedro.physics.geometry import canvas_for_positions
from fly64_kedro.pinn.grouping import training_groups
from fly64_kedro.pinn.inference import reconstruct
from fly64_kedro.pinn.network import PINNConfig, build_model, input_scale_for
from fly64_kedro.pinn.training import fit
from fly64_kedro.reconstruction import ENGINES, Problem, RunSettings, run_engine

ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENTS = {64: "base", 128: "paper"}  # N → the environment whose object and scan size it uses
PAPER_PATTERNS_PER_S = {"PtychoPINN (128², 1 GPU, no stitching)": 2600.0, "LSQML (pty-chi, 128², 100 epochs)": 71.36}


def _section(env: str, name: str) -> dict[str, Any]:
    path = ROOT / "conf" / env / f"parameters_{name}.yml"
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        merged[key] = _merged(merged[key], value) if isinstance(value, dict) and key in merged else value
    return merged


def training_params(env: str, device: str, **changes: Any) -> TrainingParams:
    values = _merged(_section("base", "training")["training"], _section(env, "training").get("training", {}))
    values = _merged(values, {**changes, "device": device, "progress_bar": False})
    return TrainingParams.model_validate(values)


def synthetic_scan(patch_size: int, dose: float, n_positions: int | None) -> dict[str, Any]:
    """Counts, probe in counts units and positions of each split of a simulated scan (object and scan as conf)."""
    simulation = _merged(_section("base", "simulation"), _section(ENVIRONMENTS[patch_size], "simulation"))
    side, default_positions = simulation["ground_truth"]["object"]["size"], simulation["scan"]["n_positions"]
    obj = ground_truth.synthesize_object(side, 36, 0.95, (0.55, 1.0), 1.0, 0.04, 0.15, 1.5, seed=1)
    probe = ground_truth.synthesize_probe(patch_size, 0.5, patch_size / 2)
    rng = np.random.default_rng(0)
    y, x = scan.random_positions(obj.shape, patch_size, n_positions or default_positions, rng)
    intensity = forward.noiseless_intensity(obj, probe, y, x)
    scale = forward.intensity_scale_for_dose(intensity, dose)
    counts = forward.poisson_counts(intensity * np.float32(scale), rng)
    train, test, _ = scan.spatial_split_masks(y)
    return {"probe": (probe * np.sqrt(scale)).astype(np.complex64),
            "train": (counts[train], y[train], x[train]), "test": (counts[test], y[test], x[test])}


def _model(params: TrainingParams, patch_size: int, gridsize: int, probe: np.ndarray, counts: np.ndarray):
    config = PINNConfig(patch_size, gridsize, params.network.width, params.network.n_blocks, input_scale_for(counts),
                        params.merge_epsilon, params.trainable_intensity_scale, params.network.phase_head)
    return build_model(config, probe, seed=0, device=params.device)


def training_rate(params: TrainingParams, data: dict[str, Any], patch_size: int, gridsize: int, repeats: int,
                  max_groups: int) -> tuple[float, float, int]:
    """Median (groups/s, patterns/s) of one epoch of ``fit`` on the train split, and the groups timed."""
    counts, y, x = data["train"]
    groups = training_groups(y, x, gridsize, 7, params.groups_per_anchor, np.random.default_rng(0))
    keep = min(len(groups), max_groups)
    groups = type(groups)(groups.indices[:keep], groups.offsets[:keep])
    one_epoch = params.model_copy(update={"max_epochs": 1})
    rates = []
    for repeat in range(repeats + 1):  # the first epoch warms up allocators and kernels
        model = _model(params, patch_size, gridsize, data["probe"], counts)
        _, history = fit([model], counts, groups, None, one_epoch, seed=repeat)
        if repeat:
            rates.append(history["throughput_groups_per_s"])
    rate = statistics.median(rates)
    return rate, rate * gridsize**2, min(history["groups_per_epoch"], history["n_train_groups"])


def inference_rates(params: TrainingParams, data: dict[str, Any], patch_size: int, gridsize: int,
                    repeats: int) -> tuple[float, float, int]:
    """Median patterns/s of prediction alone and of prediction plus stitching on the test split."""
    counts, y, x = data["test"]
    origin, shape = canvas_for_positions(y, x, patch_size, params.canvas_margin_px)
    model = _model(params, patch_size, gridsize, data["probe"], counts)
    predict, total = [], []
    for repeat in range(repeats + 1):
        result = reconstruct(model, counts, y, x, origin, shape, params.stitch_min_weight,
                             params.inference_batch_size)
        if repeat:
            predict.append(y.size / result["predict_seconds"])
            total.append(y.size / (result["predict_seconds"] + result["stitch_seconds"]))
    return statistics.median(predict), statistics.median(total), y.size


def lsqml_rates(data: dict[str, Any], device: str) -> tuple[float, float, int]:
    """LSQML patterns/s over its epochs and over build + epochs, test split, configured parameters."""
    values = _merged(_section("base", "reconstruction")["reconstruction"],
                     {"device": device, "progress_bar_delay_s": 1e9})
    params = ReconstructionParams.model_validate(values)
    options = params.options["lsqml"]
    counts, y, x = data["test"]
    origin, shape = canvas_for_positions(y, x, data["probe"].shape[0], params.canvas_margin_px)
    problem = Problem(counts, data["probe"], y, x, origin, shape)
    settings = RunSettings(params.device, params.dtype, params.progress_bar_delay_s)
    result = run_engine(ENGINES["lsqml"], options, problem, settings, seed=0, label="LSQML")
    return y.size / result.run_s, y.size / (result.build_s + result.run_s), options.num_epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128], choices=sorted(ENVIRONMENTS))
    parser.add_argument("--positions-128", type=int, default=720,
                        help="positions over both splits at N = 128 (conf/paper's own count if 0; fewer keeps LSQML "
                             "short on a CPU)")
    parser.add_argument("--max-train-groups", type=int, default=256, help="training groups a timed epoch draws from")
    args = parser.parse_args()
    device = args.device
    where = (torch.cuda.get_device_name(device) if device.startswith("cuda")
             else f"cpu, {torch.get_num_threads()} torch threads")
    print(f"PINN throughput on {where}; torch {torch.__version__}; medians of {args.repeats} repeats\n")

    data = {n: synthetic_scan(n, 1e4, args.positions_128 if n == 128 else None) for n in args.sizes}
    quick = training_params("base", device)
    original = {64: training_params("paper", device, network={"width": 64, "n_blocks": 3}),
                128: training_params("paper", device)}

    print("training (one epoch of fit, train split)")
    print(f"{'N':>4} {'network':<26} {'gs':>2} {'batch':>5} {'groups':>6} {'groups/s':>9} {'patterns/s':>10}")
    for n in args.sizes:
        for label, params, gridsizes in (("quick " + _net(quick), quick, (1, 2)),
                                         ("original " + _net(original[n]), original[n], (1, 2))):
            for gridsize in gridsizes:
                groups_s, patterns_s, timed = training_rate(params, data[n], n, gridsize, args.repeats,
                                                            args.max_train_groups)
                print(f"{n:>4} {label:<26} {gridsize:>2} {params.batch_size:>5} {timed:>6} {groups_s:>9.1f} "
                      f"{patterns_s:>10.1f}")

    print("\ninference (test split) against LSQML on the same patterns")
    print(f"{'N':>4} {'network':<26} {'gs':>2} {'patterns':>8} {'predict/s':>10} {'+stitch/s':>10} "
          f"{'LSQML/s':>9} {'ratio':>7} {'ratio+stitch':>12}")
    for n in args.sizes:
        lsqml_run, lsqml_total, epochs = lsqml_rates(data[n], device)
        for label, params in (("quick " + _net(quick), quick), ("original " + _net(original[n]), original[n])):
            for gridsize in (1, 2):
                predict, stitched, count = inference_rates(params, data[n], n, gridsize, args.repeats)
                print(f"{n:>4} {label:<26} {gridsize:>2} {count:>8} {predict:>10.1f} {stitched:>10.1f} "
                      f"{lsqml_run:>9.2f} {predict / lsqml_run:>6.1f}× {stitched / lsqml_run:>11.1f}×")
        print(f"{n:>4} LSQML {epochs} epochs: {lsqml_run:.2f} patterns/s over its epochs, {lsqml_total:.2f} "
              "including the task build")
    paper = list(PAPER_PATTERNS_PER_S.values())
    print(f"\npaper (overlap-free PtychoPINN, v1): {paper[0]:.0f} vs {paper[1]:.2f} patterns/s = "
          f"{paper[0] / paper[1]:.1f}× (inference without stitching against LSQML at 100 epochs, one GPU, 128²)")


def _net(params: TrainingParams) -> str:
    return f"w{params.network.width}×{params.network.n_blocks} blocks"


if __name__ == "__main__":
    main()
