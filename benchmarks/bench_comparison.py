"""Comparison cost: wall time and peak memory of scoring one cell (three arms) per study size.

Each size runs in a fresh Python process: the embedded fly64 object and a random scan of
the environment's size, the test split of the baseline view (all its positions: the
largest evaluated region), and three arms made from the truth the way reconstructions
differ from it (sub-pixel shift, complex scale, blur, noise), each scored with
``score_cell`` and the base comparison parameters. One warm-up cell (torch start-up) is
not timed. Printed per size: the median seconds of one cell and of its parts
(alignment; MS-SSIM; the other metrics), the evaluated region, and the peak resident
memory added while scoring a cell (VmHWM after − VmRSS before, Linux); ratios are
against the default size (N = 64, object 384²).

    OMP_NUM_THREADS=2 python benchmarks/bench_comparison.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
SIZES = {  # name → (N, object side, positions over both splits), as conf/<env>
    "default": (64, 384, 720),
    "paper": (128, 768, 2880),
    "test": (32, 192, 200),
}


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _arms(truth: np.ndarray, y: np.ndarray, x: np.ndarray, patch_size: int) -> list[dict]:
    """Three object payloads over the positions' canvas: shifted/scaled/blurred/noisy versions of the truth."""
    from fly64_kedro.physics.geometry import canvas_for_positions

    origin, (height, width) = canvas_for_positions(y, x, patch_size, 8)
    pad = patch_size
    padded = np.pad(truth, pad, mode="edge")
    rng = np.random.default_rng(0)
    arms = []
    variants = (((0.3, -0.4), 0.9, 0.0, 0.05), ((-0.6, 0.2), 1.2, 1.0, 0.1), ((0.0, 0.8), 0.5, 0.5, 0.2))
    for shift, scale, blur, noise in variants:  # px, |scale|, blur std px, noise std
        moved = np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(padded), shift))
        if blur:
            moved = ndimage.gaussian_filter(moved.real, blur) + 1j * ndimage.gaussian_filter(moved.imag, blur)
        oy, ox = int(origin[0]) + pad, int(origin[1]) + pad
        canvas = scale * np.exp(0.7j) * moved[oy:oy + height, ox:ox + width]
        canvas += noise * (rng.standard_normal(canvas.shape) + 1j * rng.standard_normal(canvas.shape))
        arms.append({"object": canvas.astype(np.complex64), "canvas_origin_yx": origin, "_metadata": {"status": "ok"}})
    return arms


def child(size: str, repeats: int) -> dict:
    """Measure one size in this (fresh) process; returns medians and peak memory."""
    from fly64_kedro.metrics import quality, score
    from fly64_kedro.parameters.comparison import ComparisonParams
    from fly64_kedro.physics.ground_truth import synthesize_object
    from fly64_kedro.physics.scan import random_positions, spatial_split_masks

    patch_size, side, n_positions = SIZES[size]
    base = yaml.safe_load((ROOT / "conf/base/parameters_simulation.yml").read_text())["ground_truth"]["object"]
    params = ComparisonParams.model_validate(
        yaml.safe_load((ROOT / "conf/base/parameters_comparison.yml").read_text())["comparison"])
    truth = synthesize_object(seed=1, **{**base, "size": side})
    y, x = random_positions(truth.shape, patch_size, n_positions, np.random.default_rng(2))
    test = spatial_split_masks(y)[1]
    y, x = y[test], x[test]
    arms = _arms(truth, y, x, patch_size)

    # time the parts by wrapping the library functions the scorer calls
    parts = {"alignment": 0.0, "ms_ssim": 0.0}
    for module, name, part in ((score, "align_to_truth", "alignment"), (quality, "ms_ssim", "ms_ssim")):
        original = getattr(module, name)

        def timed(*args, _original=original, _part=part, **kwargs):
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                parts[_part] += time.perf_counter() - start

        setattr(module, name, timed)

    def one_cell() -> list[score.CellResult]:
        return [score.score_cell(arm, truth, y, x, patch_size, params, "bench") for arm in arms]

    results = one_cell()  # warm-up
    rss_before = _proc_status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    totals, aligns, msssims = [], [], []
    for _ in range(repeats):
        parts.update(alignment=0.0, ms_ssim=0.0)
        start = time.perf_counter()
        results = one_cell()
        totals.append(time.perf_counter() - start)
        aligns.append(parts["alignment"])
        msssims.append(parts["ms_ssim"])
    peak_mib = (_proc_status_kib("VmHWM") - rss_before) / 1024
    assert all(r.status == "ok" for r in results), [r.reason for r in results]
    region = results[0].record["alignment"]["region_yx"]
    return {
        "cell_s": statistics.median(totals),
        "alignment_s": statistics.median(aligns),
        "ms_ssim_s": statistics.median(msssims),
        "other_s": statistics.median(t - a - m for t, a, m in zip(totals, aligns, msssims)),
        "peak_mib": peak_mib,
        "region": f"{region[1] - region[0]}×{region[3] - region[2]}",
        "positions": int(y.size),
        "phase_ms_ssim": [round(r.metrics["phase", "ms_ssim"], 4) for r in results],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", choices=sorted(SIZES))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.repeats)))
        return
    results = {}
    for size in SIZES:
        run = subprocess.run([sys.executable, __file__, "--child", size, "--repeats", str(args.repeats)],
                             capture_output=True, text=True, check=True)
        results[size] = json.loads(run.stdout.strip().splitlines()[-1])
    reference = results["default"]
    print(f"one cell = 3 arms scored with score_cell; median of {args.repeats} cells; ratio = size / default")
    header = f"{'size':8s} {'N':>4s} {'object':>7s} {'pos.':>5s} {'region':>9s}"
    for column in ("cell s", "align s", "MS-SSIM s", "other s", "peak MiB"):
        header += f" {column:>10s} {'ratio':>6s}"
    print(header)
    for size, values in results.items():
        n, side, _ = SIZES[size]
        line = f"{size:8s} {n:4d} {side:6d}² {values['positions']:5d} {values['region']:>9s}"
        for key in ("cell_s", "alignment_s", "ms_ssim_s", "other_s", "peak_mib"):
            line += f" {values[key]:10.3f} {values[key] / reference[key]:6.2f}"
        print(line)
    print("phase MS-SSIM of the three synthetic arms:", {size: v["phase_ms_ssim"] for size, v in results.items()})


if __name__ == "__main__":
    main()
