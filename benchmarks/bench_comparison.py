"""Comparison cost: seconds and peak memory of scoring one cell, this checkout against a reference commit.

One cell is what the comparison stage does per (dose, view, split): ``score_view_cell`` on
three reconstruction arms made from the truth the way reconstructions differ from it
(sub-pixel shift, complex scale, blur, noise), plus whatever controls that version scores
itself (today: the flat floor and the truth ceiling on the cell's support; before the support
scoring: the truth). Each (version, size) runs in a fresh Python process that imports the
package from that version's ``src`` and reads that version's ``conf/base``; the reference
is checked out in a temporary git worktree; the child calls ``score_view_cell`` in the signature
that version has (typed contract values and a ``Cell`` since the contracts refactor, payload dicts
and dose/view/split/namespace keywords before it), timing each version's checks of its inputs
with the scoring. One warm-up cell (torch start-up) is not timed.
Printed per size: the median seconds of one cell and the peak resident memory added while
scoring (VmHWM after − VmRSS before, Linux), for both versions, and this / reference.

    OMP_NUM_THREADS=2 python benchmarks/bench_comparison.py [--reference 60da6a3] [--repeats 5]
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
SIZES = {  # name → (N, object side, positions over both splits)
    "default": (64, 448, 2400),
    "paper": (128, 768, 6672),
    "test": (32, 192, 200),
}
CELL = {"dose": 1e5, "view": "baseline", "split": "test"}


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _arms(truth: np.ndarray, y: np.ndarray, x: np.ndarray, patch_size: int) -> dict[str, dict]:
    """Three object payloads over the positions' canvas: shifted/scaled/blurred/noisy versions of the truth."""
    from fly64_kedro.physics.geometry import canvas_for_positions

    origin, (height, width) = canvas_for_positions(y, x, patch_size, 8)
    pad = patch_size
    padded = np.pad(truth, pad, mode="edge")
    rng = np.random.default_rng(0)
    arms = {}
    variants = (((0.3, -0.4), 0.9, 0.0, 0.05), ((-0.6, 0.2), 1.2, 1.0, 0.1), ((0.0, 0.8), 0.5, 0.5, 0.2))
    for name, (shift, scale, blur, noise) in zip(("pinn", "pinn_gs1", "lsqml"), variants):
        moved = np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(padded), shift))
        if blur:
            moved = ndimage.gaussian_filter(moved.real, blur) + 1j * ndimage.gaussian_filter(moved.imag, blur)
        oy, ox = int(origin[0]) + pad, int(origin[1]) + pad
        canvas = scale * np.exp(0.7j) * moved[oy:oy + height, ox:ox + width]
        canvas += noise * (rng.standard_normal(canvas.shape) + 1j * rng.standard_normal(canvas.shape))
        arms[name] = {"object": canvas.astype(np.complex64), "canvas_origin_yx": origin, "_metadata": {"status": "ok"}}
    return arms


def _cell_scorer(study: Any, comparison: Any, truth: np.ndarray, probe: np.ndarray, y: np.ndarray, x: np.ndarray,
                 arms: dict[str, dict]) -> Callable[[], dict]:
    """One cell's ``score_view_cell`` call, in the signature of the imported version; it returns the scores."""
    from fly64_kedro.pipelines.comparison.nodes import score_view_cell

    if "cell" in inspect.signature(score_view_cell).parameters:
        return _contract_scorer(score_view_cell, study, comparison, truth, probe, y, x, arms)
    ground_truth = {"objectGuess": truth, "probeGuess": probe}
    view = {"ycoords": y, "xcoords": x, "probeGuess": probe}
    return lambda: score_view_cell(ground_truth, view, study, comparison, **CELL, namespace="dose_100000", **arms)[0]


def _contract_scorer(score_view_cell: Callable, study: Any, comparison: Any, truth: np.ndarray, probe: np.ndarray,
                     y: np.ndarray, x: np.ndarray, arms: dict[str, dict]) -> Callable[[], dict]:
    """The call since the contracts refactor: typed values and a ``Cell``.

    The values are checked where they are loaded (``from_payload``), which the call times
    with the scoring, as the node itself checked its payloads before. The scan view's
    patterns are zeros that take no memory: the scoring reads only its positions and probe.
    """
    from fly64_kedro.contracts import GroundTruth, ObjectEstimate, ScanView
    from fly64_kedro.parameters.study import Cell

    patterns = np.broadcast_to(np.float32(0), (y.size, *probe.shape))
    scan_view = ScanView(patterns, y, x, np.arange(y.size), probe, 1.0)

    def one_cell() -> dict:
        ground_truth = GroundTruth.from_payload({"objectGuess": truth, "probeGuess": probe}, "ground_truth")
        estimates = {method: ObjectEstimate.from_payload(payload, method) for method, payload in arms.items()}
        return score_view_cell(ground_truth, scan_view, study, comparison, cell=Cell(**CELL), **estimates)[0]

    return one_cell


def child(size: str, repeats: int, root: Path) -> dict:
    """Measure one size with the package and configuration of ``root``; medians and peak memory."""
    sys.path.insert(0, str(root / "src"))
    from fly64_kedro.parameters import StudyDesign
    from fly64_kedro.parameters.comparison import ComparisonParams
    from fly64_kedro.physics.ground_truth import synthesize_object, synthesize_probe
    from fly64_kedro.physics.scan import random_positions, spatial_split_masks

    def conf(name: str) -> dict:
        return yaml.safe_load((root / "conf" / "base" / f"parameters{name}.yml").read_text())

    patch_size, side, n_positions = SIZES[size]
    study = StudyDesign.model_validate({**conf("")["study"], "patch_size": patch_size})
    comparison = ComparisonParams.model_validate(conf("_comparison")["comparison"])
    settings = conf("_simulation")["ground_truth"]
    truth = synthesize_object(seed=1, **{**settings["object"], "size": side})
    probe = synthesize_probe(patch_size, settings["probe"]["pupil_radius_fraction"],
                             settings["probe"]["defocus_diameter_fraction"] * patch_size)
    y, x = random_positions(truth.shape, patch_size, n_positions, np.random.default_rng(2))
    test = spatial_split_masks(y)[1]
    y, x = y[test], x[test]
    one_cell = _cell_scorer(study, comparison, truth, probe, y, x, _arms(truth, y, x, patch_size))
    scores = one_cell()  # warm-up
    rss_before = _proc_status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    totals = []
    for _ in range(repeats):
        start = time.perf_counter()
        scores = one_cell()
        totals.append(time.perf_counter() - start)
    statuses = {method: record["status"] for method, record in scores["records"].items()}
    assert set(statuses.values()) == {"ok"}, statuses
    return {"cell_s": statistics.median(totals), "peak_mib": (_proc_status_kib("VmHWM") - rss_before) / 1024,
            "arms_scored": len(statuses), "positions": int(y.size)}


def _measure(root: Path, repeats: int) -> dict[str, dict]:
    results = {}
    for size in SIZES:
        run = subprocess.run([sys.executable, __file__, "--child", size, "--repeats", str(repeats), "--root", str(root)],
                             capture_output=True, text=True, check=True)
        results[size] = json.loads(run.stdout.strip().splitlines()[-1])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference", default="HEAD", help="git revision to compare with (default: HEAD)")
    parser.add_argument("--child", choices=sorted(SIZES))
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.repeats, args.root)))
        return
    with tempfile.TemporaryDirectory() as folder:
        reference_root = Path(folder) / "reference"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(reference_root), args.reference],
                       check=True, capture_output=True)
        try:
            reference = _measure(reference_root, args.repeats)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(reference_root)], check=True)
    current = _measure(ROOT, args.repeats)
    print(f"one cell = score_view_cell on 3 arms (+ each version's controls); median of {args.repeats} cells")
    print(f"reference = {args.reference}; ratio = this checkout / reference")
    print(f"{'size':8s} {'pos.':>5s} {'arms ref/this':>13s} {'ref s':>8s} {'this s':>8s} {'ratio':>6s} "
          f"{'ref MiB':>8s} {'this MiB':>8s} {'ratio':>6s}")
    for size in SIZES:
        old, new = reference[size], current[size]
        print(f"{size:8s} {new['positions']:5d} {old['arms_scored']:>6d}/{new['arms_scored']:<6d} "
              f"{old['cell_s']:8.3f} {new['cell_s']:8.3f} {new['cell_s'] / old['cell_s']:6.2f} "
              f"{old['peak_mib']:8.1f} {new['peak_mib']:8.1f} {new['peak_mib'] / max(old['peak_mib'], 1e-9):6.2f}")


if __name__ == "__main__":
    main()
