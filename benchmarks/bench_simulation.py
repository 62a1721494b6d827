"""Simulation throughput against its physical floor, and peak memory at fly64 scale.

Throughput: the ``simulate_diffraction`` node (patches → exit waves → far field →
Poisson counts → sqrt) in patterns/s at N = 64 and N = 128, side by side with a batched
FFT (``scipy.fft.fft2`` on every core the process may use) of the same exit waves in the same run; the ratio
sim/FFT should be ≥ 0.5. A breakdown shows where the node's time goes.

Peak memory: the node on 10,304 positions at N = 128 (the real fly64 scan) in a fresh
subprocess, measured with tracemalloc (numpy reports its buffers to it) and ru_maxrss.

The geometry is ``conf/base`` with the object side scaled 6·N. Run from the repository root::

    OMP_NUM_THREADS=2 python benchmarks/bench_simulation.py [--positions 720] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft
from kedro.config import OmegaConfigLoader

from fly64_kedro.contracts import GroundTruth, Probe, ScanPositions
from fly64_kedro.parameters import StudyDesign, validate_parameters
from fly64_kedro.parameters.study import Cell
from fly64_kedro.physics.forward import (
    extract_patches,
    far_field_intensity,
    intensity_scale_for_dose,
    noiseless_intensity,
    poisson_counts,
    usable_cores,
)
from fly64_kedro.pipelines.simulation import nodes
from fly64_kedro.settings import CONFIG_LOADER_ARGS

ROOT = Path(__file__).resolve().parents[1]
FLY64_POSITIONS = 10_304


def build_inputs(patch_size: int, n_positions: int) -> tuple[GroundTruth, Probe, ScanPositions, StudyDesign]:
    """Ground truth, probe and scan positions of ``conf/base`` (with ``conf/local``) scaled to N and n positions."""
    raw = OmegaConfigLoader(conf_source=str(ROOT / "conf"), **CONFIG_LOADER_ARGS)["parameters"]
    raw["study"]["patch_size"] = patch_size
    raw["ground_truth"]["object"]["size"] = 6 * patch_size
    raw["scan"]["n_positions"] = n_positions
    parameters = validate_parameters(raw)
    study = parameters["study"]
    ground_truth = nodes.synthesize_ground_truth(parameters["ground_truth"], study)
    probe = nodes.prepare_probe(ground_truth)
    positions = nodes.draw_scan_positions(ground_truth, study, parameters["scan"])
    return ground_truth, probe, positions, study


def median_seconds(func: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def throughput(patch_size: int, n_positions: int, repeats: int) -> None:
    ground_truth, probe, positions, study = build_inputs(patch_size, n_positions)
    obj, probe_array = ground_truth.obj, probe.probe
    exit_waves = extract_patches(obj, positions.ycoords, positions.xcoords, patch_size) * probe_array
    intensity = far_field_intensity(exit_waves)

    def reference() -> None:
        scipy.fft.fft2(exit_waves, axes=(-2, -1), workers=usable_cores())

    print(f"\nN = {patch_size}, {n_positions} patterns, object {obj.shape}, median of {repeats}")
    print(f"{'dose':>8} {'simulation pat/s':>17} {'batched FFT pat/s':>18} {'ratio':>6}")
    for dose in study.doses:
        def simulate(dose: float = dose) -> None:
            nodes.simulate_diffraction(ground_truth, probe, positions, study, cell=Cell(dose))

        t_sim, t_fft = [], []
        for _ in range(repeats):  # interleaved, so machine load affects both alike
            t_fft.append(median_seconds(reference, 1))
            t_sim.append(median_seconds(simulate, 1))
        sim, fft = n_positions / np.median(t_sim), n_positions / np.median(t_fft)
        print(f"{dose:8.0e} {sim:17.0f} {fft:18.0f} {sim / fft:6.2f}")

    expected = intensity * np.float32(intensity_scale_for_dose(intensity, study.doses[-1]))
    stages = {
        "extract patches": lambda: extract_patches(obj, positions.ycoords, positions.xcoords, patch_size),
        "probe × patch": lambda: exit_waves * probe_array,
        "batched FFT (reference)": reference,
        "far-field intensity (one call)": lambda: far_field_intensity(exit_waves),
        "noiseless intensity (batched)": lambda: noiseless_intensity(
            obj, probe_array, positions.ycoords, positions.xcoords),
        f"Poisson counts (dose {study.doses[0]:.0e})": lambda: poisson_counts(
            intensity * np.float32(intensity_scale_for_dose(intensity, study.doses[0])), np.random.default_rng(0)),
        f"Poisson counts (dose {study.doses[-1]:.0e})": lambda: poisson_counts(expected, np.random.default_rng(0)),
        "sqrt → float32": lambda: np.sqrt(expected).astype(np.float32),
    }
    print("breakdown (ms):", ", ".join(f"{name} {1e3 * median_seconds(f, repeats):.1f}" for name, f in stages.items()))


def peak_memory(patch_size: int, n_positions: int) -> dict[str, float]:
    """Peak traced memory (GiB) of one simulate_diffraction call, in this process."""
    ground_truth, probe, positions, study = build_inputs(patch_size, n_positions)
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    result = nodes.simulate_diffraction(ground_truth, probe, positions, study, cell=Cell(study.doses[0]))
    peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    gib = 2.0**30
    return {
        "peak_traced_gib": peak / gib,
        "output_diffraction_gib": result.diffraction.nbytes / gib,
        "max_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / gib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=720, help="patterns per throughput run")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        print(json.dumps(peak_memory(128, FLY64_POSITIONS)))
        return
    for patch_size in (64, 128):
        throughput(patch_size, args.positions, args.repeats)
    child = subprocess.run([sys.executable, __file__, "--memory-child"], capture_output=True, text=True, check=True)
    memory = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"\npeak memory, {FLY64_POSITIONS} positions at N = 128 (object 768²), one dose: "
          f"traced {memory['peak_traced_gib']:.2f} GiB, max RSS {memory['max_rss_gib']:.2f} GiB "
          f"(output diffraction alone {memory['output_diffraction_gib']:.2f} GiB)")


if __name__ == "__main__":
    main()
