"""Score one reconstruction of one cell: align to the truth, then metric rows (method-agnostic).

``score_cell`` is the whole per-arm computation of the comparison: it reads the status of
an ``ObjectEstimate`` (as written by training or reconstruction), aligns an ``ok`` canvas to
the truth over the cell's support with ``align_to_truth`` and measures every metric of
amplitude and phase on that support; a skipped or failed arm yields the same rows with NaN
values and its status and reason, and a metric the support is too small for is NaN with
status ``undefined`` and its reason. ``CellResult.rows`` turns that into tidy rows (dose,
view, split, method, component, metric, value, status, reason) for the study table.

**Phase: one branch cut per image.** After the alignment removed the global phase offset
(and the ramp, where enabled), both images' phases are read in one window of width 2π
centred on a single reference value, the circular mean of the truth's phase over the
support: φ = φ_ref + wrap(arg(z) − φ_ref). No pixel of the truth decides how a pixel of a
reconstruction is wrapped, so a reconstruction that carries no information scores about
zero whatever its phase. A zero pixel reads amplitude 0 and phase φ_ref.
SSIM and MS-SSIM assume images in [0, data range]: both images are offset by the truth's
minimum over the support (which changes neither MAE, RMSE, PSNR, Pearson nor FRC) with data
range = max − min of the truth over the support.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from fly64_kedro.contracts import ObjectEstimate
from fly64_kedro.metrics import quality
from fly64_kedro.metrics.alignment import (
    Alignment,
    DegenerateReconstruction,
    align_to_truth,
)
from fly64_kedro.metrics.frc import frc_crossing, frc_curve
from fly64_kedro.metrics.quality import MetricUndefined
from fly64_kedro.metrics.support import Support
from fly64_kedro.parameters.comparison import ComparisonParams

COMPONENTS: tuple[str, str] = ("amplitude", "phase")
IMAGE_METRICS: tuple[str, ...] = ("ms_ssim", "ssim", "mae", "rmse", "psnr", "pearson")
ALIGNMENT_METRICS: tuple[str, ...] = (
    "shift_y_px", "shift_x_px", "registration_rejected", "support_fraction", "scale", "phase_offset_rad",
    "phase_ramp_y_rad_per_px", "phase_ramp_x_rad_per_px",
)
ROW_COLUMNS: tuple[str, ...] = ("dose", "view", "split", "method", "component", "metric", "value", "status", "reason")


def phase_reference(truth: np.ndarray, support: np.ndarray) -> float:
    """Circular mean (rad) of the truth's phase over the support: the centre of every image's branch cut."""
    phasors = truth[support]
    magnitudes = np.abs(phasors)
    units = np.divide(phasors, magnitudes, out=np.zeros_like(phasors), where=magnitudes > 0)
    return float(np.angle(units.sum()))


def wrapped_phase(image: np.ndarray, reference: float) -> np.ndarray:
    """Phase (rad) of a complex image in the window (reference − π, reference + π], float64."""
    return reference + np.angle(image.astype(np.complex128) * np.exp(-1j * reference))


def component_images(truth: np.ndarray, aligned: np.ndarray,
                     support: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """component → (truth, reconstruction) real images (h, w) float64: amplitude, and phase in rad.

    Both phases are read with one branch cut, centred on ``phase_reference(truth, support)``.
    """
    reference = phase_reference(truth, support)
    return {
        "amplitude": (np.abs(truth).astype(np.float64), np.abs(aligned).astype(np.float64)),
        "phase": (wrapped_phase(truth, reference), wrapped_phase(aligned, reference)),
    }


def expected_metrics(params: ComparisonParams) -> list[tuple[str, str]]:
    """Every (component, metric) a cell reports, in table order (phase MS-SSIM is the headline)."""
    per_image = [*IMAGE_METRICS, *params.frc.thresholds]
    return ([(component, metric) for component in COMPONENTS for metric in per_image]
            + [("alignment", metric) for metric in ALIGNMENT_METRICS])


def _measured(compute: Callable[[], float], reasons: dict[str, str], name: str) -> float:
    """``compute()``, or NaN with the reason recorded under ``name`` when the metric is undefined."""
    try:
        return compute()
    except MetricUndefined as exc:
        reasons[name] = str(exc)
        return float("nan")


def image_metrics(
    reference: np.ndarray, test: np.ndarray, support: np.ndarray, params: ComparisonParams,
) -> tuple[dict[str, float], dict[str, str], np.ndarray, np.ndarray, dict[str, Any]]:
    """Every metric of one real image (h, w) against its truth, on the support (h, w) bool.

    Returns (metric → value, metric → reason for each NaN, FRC frequencies (R,) cycles/px,
    FRC curve (R,), record of the MS-SSIM settings used and the data range). Peak and SSIM
    range = max − min of ``reference`` over the support.
    """
    inside_ref, inside_test = reference[support], test[support]
    peak = quality.data_range(inside_ref)
    floor = float(inside_ref.min())
    reasons: dict[str, str] = {}
    record: dict[str, Any] = {"data_range": peak}

    def windowed(name: str, compute: Callable[[], float]) -> float:
        if not peak > 0:
            reasons[name] = "the truth is constant on the support: no dynamic range for the SSIM constants"
            return float("nan")
        return _measured(compute, reasons, name)

    def masked_ms_ssim() -> float:
        settings = quality.adapt_ms_ssim(reference.shape, params.ms_ssim)
        value, used = quality.ms_ssim(test - floor, reference - floor, peak, settings,
                                      (params.ssim.k1, params.ssim.k2), support)
        record.update(settings.as_record(), **used)
        return value

    frequency, curve = frc_curve(test, reference, params.frc.tukey_alpha, support)
    values = {
        "ms_ssim": windowed("ms_ssim", masked_ms_ssim),
        "ssim": windowed("ssim", lambda: quality.ssim(test - floor, reference - floor, peak, params.ssim, support)),
        "mae": quality.mae(inside_test, inside_ref),
        "rmse": quality.rmse(inside_test, inside_ref),
        "psnr": quality.psnr(inside_test, inside_ref, peak) if peak > 0 else float("nan"),
        "pearson": _measured(lambda: quality.pearson(inside_test, inside_ref), reasons, "pearson"),
    }
    if not peak > 0:
        reasons["psnr"] = "the truth is constant on the support: no peak for PSNR"
    for name, threshold in params.frc.thresholds.items():
        values[name] = frc_crossing(frequency, curve, threshold) if np.isfinite(curve).any() else float("nan")
        if not np.isfinite(values[name]):
            reasons[name] = "no FRC ring holds power on the support"
    return values, reasons, frequency, curve, record


@dataclass(frozen=True)
class CellResult:
    """One arm of one cell: status, metric values and (when ok) the aligned images and FRC curves."""

    status: str
    """'ok', or the upstream 'skipped' / 'failed' (also 'failed' if alignment is impossible)."""
    reason: str
    """Why not ok; empty when ok."""
    metrics: dict[tuple[str, str], float]
    """(component, metric) → value for every ``expected_metrics`` pair (NaN unless ok)."""
    alignment: Alignment | None = None
    """Aligned truth and reconstruction (complex64) with the alignment record; None unless ok."""
    frc: dict[str, np.ndarray] = field(default_factory=dict)
    """'frequency' (R,) cycles/px, 'amplitude' and 'phase' (R,) FRC curves; empty unless ok."""
    record: dict[str, Any] = field(default_factory=dict)
    """JSON-ready: status, reason, alignment record, per-component data range and MS-SSIM settings."""
    undefined: dict[tuple[str, str], str] = field(default_factory=dict)
    """(component, metric) → why that metric is NaN in an 'ok' arm (e.g. a support too small for it)."""

    def rows(self, **coordinates: Any) -> list[dict[str, Any]]:
        """Tidy rows: ``coordinates`` (dose, view, split, method) + component, metric, value, status, reason.

        A metric that is undefined in a scored arm has status 'undefined' and its own reason.
        """
        rows = []
        for key, value in self.metrics.items():
            status, reason = ("undefined", self.undefined[key]) if key in self.undefined else (self.status, self.reason)
            rows.append({**coordinates, "component": key[0], "metric": key[1], "value": value,
                         "status": status, "reason": reason})
        return rows

    def frc_rows(self, **coordinates: Any) -> list[dict[str, Any]]:
        """Tidy FRC curves: ``coordinates`` + component, frequency (cycles/px), frc; empty unless ok."""
        return [{**coordinates, "component": component, "frequency": float(f), "frc": float(value)}
                for component in COMPONENTS if component in self.frc
                for f, value in zip(self.frc["frequency"], self.frc[component])]


def not_scored(status: str, reason: str, params: ComparisonParams) -> CellResult:
    """The result of an arm that has no reconstruction to score: every metric NaN."""
    metrics = {key: float("nan") for key in expected_metrics(params)}
    return CellResult(status, reason, metrics, record={"status": status, "reason": reason})


def score_reconstruction(
    obj: np.ndarray, canvas_origin_yx: np.ndarray, truth: np.ndarray, support: Support, params: ComparisonParams,
) -> CellResult:
    """Align one reconstruction canvas (H, W) complex to ``truth`` over ``support`` and measure it.

    ``canvas_origin_yx`` (2,) object pixel of canvas pixel (0, 0); ``support`` the cell's
    support (``metrics.support.view_support``). Raises ``DegenerateReconstruction`` if the
    arm cannot be aligned.

    Runs with one OpenMP/BLAS thread (threadpoolctl): on these small images extra threads
    only contend (MS-SSIM measured 40× slower with 2 threads on a loaded 2-core machine);
    cells run in parallel through the Kedro runner instead.
    """
    metrics: dict[tuple[str, str], float] = {}
    undefined: dict[tuple[str, str], str] = {}
    curves: dict[str, np.ndarray] = {}
    settings: dict[str, Any] = {}
    with threadpool_limits(limits=1):
        alignment = align_to_truth(obj, canvas_origin_yx, truth, support, params.alignment)
        images = component_images(alignment.truth, alignment.aligned, alignment.support)
        for component, (reference, test) in images.items():
            values, reasons, frequency, curves[component], settings[component] = image_metrics(
                reference, test, alignment.support, params)
            curves["frequency"] = frequency
            metrics.update({(component, metric): value for metric, value in values.items()})
            undefined.update({(component, metric): reason for metric, reason in reasons.items()})
    record = alignment.record
    shift, ramp = record["registration_shift_px"], record["phase_ramp_rad_per_px"]
    metrics.update({
        ("alignment", "shift_y_px"): shift[0], ("alignment", "shift_x_px"): shift[1],
        ("alignment", "registration_rejected"): float(record["registration_rejected"]),
        ("alignment", "support_fraction"): record["support_fraction"],
        ("alignment", "scale"): record["scale"], ("alignment", "phase_offset_rad"): record["phase_offset_rad"],
        ("alignment", "phase_ramp_y_rad_per_px"): ramp[0], ("alignment", "phase_ramp_x_rad_per_px"): ramp[1],
    })
    ordered = {key: metrics[key] for key in expected_metrics(params)}
    record = {"status": "ok", "reason": "", "alignment": record, "components": settings,
              "phase_reference_rad": phase_reference(alignment.truth, alignment.support),
              "undefined": {f"{component}.{metric}": reason for (component, metric), reason in undefined.items()}}
    return CellResult("ok", "", ordered, alignment, curves, record, undefined)


def score_cell(estimate: ObjectEstimate, truth: np.ndarray, support: Support, params: ComparisonParams,
               dataset: str) -> CellResult:
    """Score one arm's ``ObjectEstimate`` (object (H, W) complex64 on its canvas, status).

    An estimate whose status is not 'ok' (upstream skipped or failed) yields NaN rows with its
    status and reason; an 'ok' estimate with non-finite pixels, or one that cannot be
    aligned, yields status 'failed' with the cause, naming ``dataset``.
    """
    if not estimate.ok:
        return not_scored(estimate.status, estimate.reason or f"upstream status '{estimate.status}'", params)
    if not np.isfinite(estimate.object).all():
        bad = int((~np.isfinite(estimate.object)).sum())
        return not_scored("failed", f"{dataset}: {bad} non-finite pixels in the reconstruction", params)
    try:
        return score_reconstruction(estimate.object, estimate.canvas_origin_yx, truth, support, params)
    except DegenerateReconstruction as exc:
        return not_scored("failed", f"{dataset}: {exc}", params)
