"""Network quality over seeds: does the physics-informed network learn, reliably, at the default?

For each root seed, dose and network (the gridsize-1 network of the baseline view; each
gridsize-2 view's network trained on its regime, i.e. groups from the whole train split whose
members keep the view's spacing S, or on the view's own train positions only, and starting
from the same dose's gridsize-1 network or from scratch), the project's
own nodes simulate the default study's data, select the views, train the network, predict the
test split and score it with the comparison's own node (``score_view_cell``: support, one phase
branch cut per image, flat floor and truth ceiling). Each job runs in its own process with one
thread, ``--jobs`` at a time. Printed: per network the median and minimum over seeds of the
test-split phase MS-SSIM, its floor and ceiling, the gridsize-1 network applied to the same
cell, epochs, stopping reasons and seconds; every job's numbers and training history go to
``--out`` (JSON) for the curves.

    python benchmarks/bench_network_quality.py [--seeds 42 7 123] [--doses 1e5 1e3] [--jobs 2] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = ("baseline:view:random", "dense:regime:gs1", "sparse:regime:gs1", "dense:view:gs1", "sparse:view:gs1",
            "dense:regime:random", "sparse:regime:random")
"""view:training data:start of every network benchmarked (``training.data``, ``training.gridsize2_start``)."""


def _parameters(seed: int, data: str, start: str = "gs1") -> dict:
    """The base environment's validated parameters with the root seed, the training data mode and the start."""
    import yaml

    from fly64_kedro.parameters import validate_parameters

    raw: dict = {}
    for path in sorted((ROOT / "conf" / "base").glob("parameters*.yml")):
        raw.update(yaml.safe_load(path.read_text()))
    raw["study"]["root_seed"] = seed
    raw["training"].update(data=data, gridsize2_start=start, progress_bar=False)
    return validate_parameters(raw)


def child(seed: int, dose: float, view: str, data: str, start: str, cache: Path) -> dict:
    """One job in this process: simulate, select, train the view's network, score its test cell.

    The baseline job stores its gridsize-1 checkpoint in ``cache``; a gridsize-2 job (run
    after every baseline job) loads it, starts from it (``start`` 'gs1') and scores that
    network on its cell too. Seconds count the job's own training only.
    """
    import torch

    torch.set_num_threads(1)
    from fly64_kedro.parameters.study import Cell
    from fly64_kedro.pipelines.comparison.nodes import score_view_cell
    from fly64_kedro.pipelines.selection.nodes import select_scan_views
    from fly64_kedro.pipelines.simulation import nodes as simulation
    from fly64_kedro.pipelines.training.nodes import reconstruct_with_pinn, train_pinn

    p = _parameters(seed, data, start)
    study = p["study"]
    truth = simulation.synthesize_ground_truth(p["ground_truth"], study)
    probe = simulation.prepare_probe(truth)
    positions = simulation.draw_scan_positions(truth, study, p["scan"])
    train, test = simulation.split_measurements(simulation.simulate_diffraction(truth, probe, positions, study,
                                                                                cell=Cell(dose)), study)
    network = Cell(dose, view)
    stored = cache / f"gs1_{seed}_{dose:g}.pt"
    gs1 = None if view == "baseline" else torch.load(stored, weights_only=True)
    regime = study.views[view].gridsize > 1 and data == "regime"
    view_train, view_test = select_scan_views(train, test, probe, study, p["selection"], cell=network)
    started = time.perf_counter()
    model, history = train_pinn(train if regime else view_train, study, p["training"],
                                gs1 if start == "gs1" else None, cell=network)
    seconds = time.perf_counter() - started
    if view == "baseline":
        torch.save(model, stored)
    arms = {}
    cell = network.with_split("test")
    outputs = reconstruct_with_pinn(view_test, model, study, p["training"], gs1, cell=cell)
    arms["pinn"] = outputs["object"]
    if gs1:
        arms["pinn_gs1"] = outputs["gs1_object"]
    scores, _ = score_view_cell(truth, view_test, study, p["comparison"], cell=cell, **arms)
    phase = {row["method"]: row["value"] for row in scores["rows"]
             if row["component"] == "phase" and row["metric"] == "ms_ssim"}
    return {"seed": seed, "dose": dose, "view": view, "data": data, "start": start, "seconds": seconds,
            "phase_ms_ssim": phase, "history": {key: value for key, value in history.items()
                                                 if key != "training_parameters"}}


def _run(job: tuple[int, float, str, str, str, Path]) -> dict:
    seed, dose, view, data, start, cache = job
    command = [sys.executable, __file__, "--child", str(seed), str(dose), view, data, start, str(cache)]
    run = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(run.stdout.strip().splitlines()[-1])


def _summary(results: list[dict]) -> None:
    print(f"{'dose':>8s} {'network':>16s} {'data':>7s} {'start':>6s} {'median':>7s} {'min':>6s} {'floor':>6s} {'ceiling':>7s} "
          f"{'gs1 here':>8s} {'epochs':>12s} {'stopped':>22s} {'s':>6s}")
    keys = sorted({(r["dose"], r["view"], r["data"], r["start"]) for r in results},
                  key=lambda k: (-k[0], k[1] != "baseline", k))
    for dose, view, data, start in keys:
        rows = [r for r in results if (r["dose"], r["view"], r["data"], r["start"]) == (dose, view, data, start)]
        values = [r["phase_ms_ssim"]["pinn"] for r in rows]
        gs1 = [r["phase_ms_ssim"].get("pinn_gs1") for r in rows if "pinn_gs1" in r["phase_ms_ssim"]]
        floor = statistics.median(r["phase_ms_ssim"]["flat_floor"] for r in rows)
        ceiling = statistics.median(r["phase_ms_ssim"]["truth_ceiling"] for r in rows)
        epochs = ",".join(str(r["history"].get("epochs_run")) for r in rows)
        stops = ",".join(str(r["history"].get("stop_reason")) for r in rows)
        print(f"{dose:8.0e} {view + (' gs1' if view == 'baseline' else ' gs2'):>16s} {data:>7s} {start:>6s} "
              f"{statistics.median(values):7.3f} {min(values):6.3f} {floor:6.3f} {ceiling:7.3f} "
              f"{(statistics.median(gs1) if gs1 else float('nan')):8.3f} {epochs:>12s} {stops:>22s} "
              f"{statistics.median(r['seconds'] for r in rows):6.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 123])
    parser.add_argument("--doses", type=float, nargs="+", default=[1e5, 1e3])
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS),
                        help="view:data:start, e.g. baseline:view:random dense:regime:gs1")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", nargs=6, metavar=("SEED", "DOSE", "VIEW", "DATA", "START", "CACHE"))
    args = parser.parse_args()
    if args.child:
        seed, dose, view, data, start, cache = args.child
        print(json.dumps(child(int(seed), float(dose), view, data, start, Path(cache))))
        return
    with tempfile.TemporaryDirectory() as cache, ThreadPoolExecutor(args.jobs) as pool:
        jobs = [(seed, dose, *network.split(":"), Path(cache)) for dose in args.doses for network in args.networks
                for seed in args.seeds]
        baseline = [job for job in jobs if job[2] == "baseline"]  # first: the others score its network too
        results = list(pool.map(_run, baseline)) + list(pool.map(_run, [job for job in jobs if job[2] != "baseline"]))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    print(f"test split, phase MS-SSIM (comparison scoring), {len(args.seeds)} seeds {args.seeds}; median and minimum "
          f"over seeds; floor = flat object, ceiling = truth on the support; 'gs1 here' = the baseline gridsize-1 "
          f"network on the same cell")
    _summary(results)


if __name__ == "__main__":
    main()
