"""LSQML benchmarks: wrapper overhead, and cost against positions and N.

    OMP_NUM_THREADS=2 python benchmarks/bench_reconstruction.py overhead
    OMP_NUM_THREADS=2 python benchmarks/bench_reconstruction.py scaling
    python benchmarks/bench_reconstruction.py scaling --device cuda      # on a GPU machine

``overhead``: the project's path (the scan-view contract check ``ScanView.from_payload`` that
runs when the view is loaded, then the node: pty-chi, result checks, record, state restore)
against pty-chi called directly with the same options and data, interleaved, median of
``--repeats`` runs each; the ratio should be ≤ 1.05.
``scaling``: seconds per epoch and peak memory against the number of positions (100,
1,000, 10,304) and N (64, 128), each case in a fresh process so peak memory is its own;
positions are random at the study's density (720 per 320² px at N = 64), the object a
smooth random phase; few epochs for the large cases.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

from fly64_kedro.contracts import ScanView, SelectionTelemetry
from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.reconstruction import ReconstructionParams
from fly64_kedro.parameters.study import Cell
from fly64_kedro.physics import forward, ground_truth, scan
from fly64_kedro.pipelines.reconstruction.nodes import reconstruct_view
from fly64_kedro.reconstruction import (
    ENGINES,
    Problem,
    RunSettings,
    run_engine,
    task_inputs,
)
from fly64_kedro.runtime import preserved_torch_state, resolve_device

DENSITY = 720 / 320**2  # positions per px² of the scanned area in the default study
SCALING_CASES = [  # (positions, N, epochs, batch size); batch 500 shows the per-minibatch whole-canvas cost
    (100, 64, 20, 50), (1000, 64, 5, 50), (10304, 64, 2, 50), (10304, 64, 2, 500),
    (100, 128, 10, 50), (1000, 128, 3, 50), (10304, 128, 2, 50), (10304, 128, 2, 500),
]
ENGINE = "lsqml"
CELL = Cell(1e4, "baseline", "train")


def synthetic_view(n_positions: int, patch_size: int, dose: float = 1e4, seed: int = 0) -> dict[str, Any]:
    """A scan view at the study's position density: random positions, smooth phase object, Poisson counts."""
    side = int(np.ceil(np.sqrt(n_positions / DENSITY))) + patch_size
    rng = np.random.default_rng(seed)
    obj = np.exp(0.5j * ground_truth.smooth_random_texture((side, side), 8.0, rng)).astype(np.complex64)
    probe = ground_truth.synthesize_probe(patch_size, 0.5, patch_size / 2)
    y, x = scan.random_positions(obj.shape, patch_size, n_positions, rng)
    expected = forward.noiseless_intensity(obj, probe, y, x)
    scale = forward.intensity_scale_for_dose(expected, dose)
    expected *= np.float32(scale)
    counts = forward.poisson_counts(expected, rng)
    return {"diffraction": np.sqrt(counts), "ycoords": y, "xcoords": x, "scan_index": np.arange(n_positions),
            "probeGuess": probe, "intensity_scale": np.array(scale),
            "_metadata": _keep_all_telemetry(n_positions, dose, ground_truth.measure_probe_diameter(probe))}


def _keep_all_telemetry(n_positions: int, dose: float, probe_diameter_px: float) -> dict[str, Any]:
    """Selection telemetry of a gridsize-1 view of ``CELL`` that kept every position."""
    return SelectionTelemetry(
        dose=dose, view=CELL.view, split=CELL.split, selection_strategy="all", acceptance_rate=1.0,
        spacing_threshold=None, n_accepted=n_positions, n_rejected=0, overlap_fraction=None,
        direct_acceptance_rate=None, geometry_acceptance_bound=None, effective_min_acceptance=None, below_floor=False,
        strategy_decision=None, n_input_positions=n_positions, probe_diameter_px=probe_diameter_px,
        measured_overlap=None, measured_overlap_neighbors=0, gridsize=1, min_positions={"iterative": 2, "pinn": 1},
        sufficient_for={"iterative": True, "pinn": True},
    ).model_dump()


def _params(epochs: int, device: str, batch_size: int = 50) -> ReconstructionParams:
    return ReconstructionParams(engines=[ENGINE], options={ENGINE: {"num_epochs": epochs, "batch_size": batch_size}},
                                canvas_margin_px=2, device=device, progress_bar_delay_s=1e9)


def _problem(view: dict[str, Any], margin_px: int) -> Problem:
    """The checked scan-view payload as a reconstruction problem on its canvas."""
    return Problem.from_measurements(ScanView.from_payload(view, "bench"), margin_px)


def _direct(view: dict[str, Any], params: ReconstructionParams, seed: int) -> float:
    """pty-chi alone: the same options and arrays, ``task.run()`` once, object to numpy."""
    from ptychi.api.task import PtychographyTask

    problem = _problem(view, params.canvas_margin_px)
    start = time.perf_counter()
    with preserved_torch_state():
        options = ENGINES[ENGINE].ptychi_options(params.options[ENGINE], resolve_device(params.device), params.dtype,
                                                 seed)
        task = PtychographyTask(options, **task_inputs(problem))
        task.run()
        task.get_data_to_cpu("object", as_numpy=True)
    return time.perf_counter() - start


def _node(view: dict[str, Any], params: ReconstructionParams, study: StudyDesign) -> tuple[float, dict[str, Any]]:
    """The project's path: the contract check of the loaded view, then the node; (seconds, job record)."""
    start = time.perf_counter()
    _, record = reconstruct_view(ScanView.from_payload(view, "bench"), params, study, cell=CELL, engine=ENGINE)
    return time.perf_counter() - start, record


def overhead(args: argparse.Namespace) -> None:
    import warnings

    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True")
    patch_size, n_positions = 64, args.positions
    view = synthetic_view(n_positions, patch_size)
    params = _params(args.epochs, args.device)
    study = StudyDesign(doses=[1e4], patch_size=patch_size, views={"baseline": {}}, neighbor_count=1, root_seed=0)
    seed = _node(view, _params(1, args.device), study)[1]["seed"]
    _direct(view, _params(1, args.device), seed)  # both warmed up: imports, allocator
    node, direct = [], []
    for repeat in range(args.repeats):
        for which in (("node", "direct") if repeat % 2 == 0 else ("direct", "node")):  # alternate the order
            if which == "direct":
                direct.append(_direct(view, params, seed))
                continue
            node.append(_node(view, params, study)[0])
    node_median, direct_median = statistics.median(node), statistics.median(direct)
    print(f"overhead: {n_positions} positions, N = {patch_size}, {args.epochs} epochs, {args.repeats} runs each, "
          f"device {args.device}")
    print(f"{'':16}{'median s':>10}{'min s':>9}{'max s':>9}")
    print(f"{'pty-chi direct':16}{direct_median:10.3f}{min(direct):9.3f}{max(direct):9.3f}")
    print(f"{'project node':16}{node_median:10.3f}{min(node):9.3f}{max(node):9.3f}")
    print(f"ratio node / direct (median): {node_median / direct_median:.3f}   (target ≤ 1.05)")


def one_case(args: argparse.Namespace) -> None:
    """Run one scaling case and print its numbers as JSON (called in a fresh process)."""
    import warnings

    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True")
    params = _params(args.epochs, args.device, args.batch_size)
    problem = _problem(synthetic_view(args.positions, args.patch_size), params.canvas_margin_px)
    settings = RunSettings(params.device, params.dtype, params.progress_bar_delay_s)
    result = run_engine(ENGINES[ENGINE], params.options[ENGINE], problem, settings, seed=1, label="bench")
    print(json.dumps({"positions": args.positions, "N": args.patch_size, "epochs": args.epochs,
                      "batch_size": args.batch_size,
                      "canvas": list(problem.canvas_shape), "s_per_epoch": result.run_s / result.epochs_completed,
                      "build_s": result.build_s, "device": result.device, **result.memory}))


def scaling(args: argparse.Namespace) -> None:
    print(f"scaling: s/epoch and peak memory, float32, device {args.device}, one process per case")
    print(f"{'positions':>9}{'N':>5}{'batch':>6}{'epochs':>7}{'canvas':>12}{'s/epoch':>9}{'build s':>9}"
          f"{'peak RSS MB':>12}{'+RSS MB':>9}{'peak GPU MB':>12}")
    for positions, patch_size, epochs, batch_size in SCALING_CASES:
        command = [sys.executable, __file__, "case", "--positions", str(positions), "--patch-size", str(patch_size),
                   "--epochs", str(epochs), "--batch-size", str(batch_size), "--device", args.device]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        row = json.loads(output.strip().splitlines()[-1])
        gpu = "-" if row["peak_gpu_mb"] is None else f"{row['peak_gpu_mb']:.0f}"
        print(f"{positions:>9}{patch_size:>5}{batch_size:>6}{epochs:>7}{'×'.join(map(str, row['canvas'])):>12}"
              f"{row['s_per_epoch']:>9.3f}{row['build_s']:>9.2f}{row['peak_rss_mb']:>12.0f}"
              f"{row['peak_rss_mb'] - row['rss_at_start_mb']:>9.0f}{gpu:>12}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["overhead", "scaling", "case"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--positions", type=int, default=360, help="overhead/case: number of positions")
    parser.add_argument("--patch-size", type=int, default=64, help="case: N")
    parser.add_argument("--epochs", type=int, default=10, help="overhead/case: epochs per run")
    parser.add_argument("--batch-size", type=int, default=50, help="case: patterns per minibatch")
    parser.add_argument("--repeats", type=int, default=5, help="overhead: runs of each")
    args = parser.parse_args()
    {"overhead": overhead, "scaling": scaling, "case": one_case}[args.mode](args)


if __name__ == "__main__":
    main()
