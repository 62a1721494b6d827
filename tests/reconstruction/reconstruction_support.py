"""Shared helpers of the reconstruction tests: synthetic scan views built with the project's
own physics (no selection stage needed) and small engine settings.

A support module rather than a ``conftest.py``: test modules import ``conftest`` by name for
the project-wide fixtures, and a second ``conftest`` would shadow it.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from contract_payloads import selection_telemetry

from fly64_kedro.contracts import ScanView
from fly64_kedro.parameters.reconstruction import ReconstructionParams
from fly64_kedro.physics import forward, ground_truth, scan
from fly64_kedro.reconstruction import ENGINES, Problem, RunSettings
from fly64_kedro.reconstruction.engines import EngineOptions

N = 32
MARGIN_PX = 2
SETTINGS = RunSettings(device="cpu", dtype="float32", progress_bar_delay_s=60)
"""CPU, float32, no progress bar."""
SMALL_OPTIONS: dict[str, dict[str, Any]] = {
    "lsqml": {"num_epochs": 2, "batch_size": 50},
    "epie": {"num_epochs": 2, "batch_size": 50},
    "dm": {"num_epochs": 2},
}
"""Two epochs of every engine."""


def options(engine: str = "lsqml", **overrides: object) -> EngineOptions:
    """``engine``'s options model with the small settings and ``overrides``."""
    return ENGINES[engine].options_model(**{**SMALL_OPTIONS[engine], **overrides})


def params(engine: str = "lsqml", **overrides: object) -> ReconstructionParams:
    """``params:reconstruction`` running ``engine`` alone, small settings and option ``overrides``, on the CPU."""
    return ReconstructionParams(engines=[engine], options={engine: {**SMALL_OPTIONS[engine], **overrides}},
                                canvas_margin_px=MARGIN_PX, device="cpu", progress_bar_delay_s=60)


def scan_view(payload: dict[str, Any], dataset: str = "memory scan view") -> ScanView:
    """The checked ``ScanView`` of a payload."""
    return ScanView.from_payload(payload, dataset)


def problem(payload: dict[str, Any]) -> Problem:
    """The reconstruction problem of a scan-view payload on its canvas (``MARGIN_PX``)."""
    return Problem.from_measurements(scan_view(payload), MARGIN_PX)


def simulate_view(n_positions: int, dose: float, object_size: int = 96, patch_size: int = N,
                  seed: int = 0, noise: bool = True) -> tuple[dict[str, Any], np.ndarray]:
    """(scan-view payload, true object): random positions, Poisson counts at ``dose``.

    The payload follows the scan-view contract: diffraction = sqrt(counts) float32,
    positions, the probe, intensity_scale, and ``_metadata`` with the selection telemetry
    of a view that kept every position.
    """
    obj = ground_truth.synthesize_object(object_size, 12, 0.95, (0.55, 1.0), 1.0, 0.04, 0.15, 1.5, seed=seed)
    probe = ground_truth.synthesize_probe(patch_size, 0.5, patch_size / 2)
    rng = np.random.default_rng(seed)
    y, x = scan.random_positions(obj.shape, patch_size, n_positions, rng)
    expected = forward.noiseless_intensity(obj, probe, y, x)
    scale = forward.intensity_scale_for_dose(expected, dose)
    expected *= np.float32(scale)
    counts = forward.poisson_counts(expected, rng) if noise else expected
    metadata = {**selection_telemetry(n_positions),
                "_loaded_from": {"path": "memory://scan_view.npz", "version": "2026-01-01T00.00.00.000Z"}}
    view = {"diffraction": np.sqrt(counts), "ycoords": y, "xcoords": x, "scan_index": np.arange(n_positions),
            "probeGuess": probe, "intensity_scale": np.array(scale), "_metadata": metadata}
    return view, obj


def truth_on_canvas(obj: np.ndarray, origin_yx: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The true object cut to a canvas (ones where the canvas extends past the object)."""
    canvas = np.ones(shape, dtype=np.complex64)
    oy, ox = (int(v) for v in origin_yx)
    ys = slice(max(oy, 0), min(oy + shape[0], obj.shape[0]))
    xs = slice(max(ox, 0), min(ox + shape[1], obj.shape[1]))
    canvas[ys.start - oy:ys.stop - oy, xs.start - ox:xs.stop - ox] = obj[ys, xs]
    return canvas


@functools.cache
def dense_scan() -> tuple[dict[str, Any], np.ndarray]:
    """100 positions over a 96² object, N = 32, 1e5 photons: a dense, high-dose scan (read-only, cached)."""
    view, obj = simulate_view(100, 1e5)
    for array in (*(value for value in view.values() if isinstance(value, np.ndarray)), obj):
        array.setflags(write=False)
    return view, obj


def overflow_factor(counts: np.ndarray) -> np.float32:
    """Intensity factor that puts the brightest pixel at 1e38, just inside float32's range.

    The data stay finite and consistent with the probe scaled by the square root, but
    LSQML's sums over a pattern overflow: a numerical failure pty-chi does not raise.
    """
    return np.float32(1e38 / counts.max())
