"""Score one reconstruction of one cell: align to the truth, then metric rows (method-agnostic).

``score_cell`` is the whole per-arm computation of the comparison: it reads the status of
an object payload (as written by training or reconstruction), aligns an ``ok`` canvas to
the truth with ``align_to_truth`` and measures every metric of amplitude and phase; a
skipped or failed arm yields the same rows with NaN values and its status and reason.
``CellResult.rows`` turns that into tidy rows (dose, view, split, method, component,
metric, value, status, reason) for the study table.

Phase convention: the reconstruction's phase is unwrapped towards the truth's,
φ_rec = arg(truth) + wrap(arg(rec) − arg(truth)), so a phase error is the wrapped
difference in (−π, π] and never a 2π jump at the branch cut; a zero pixel (e.g. one the
network's stitching left empty) reads amplitude 0 and phase 0.
SSIM and MS-SSIM assume images in [0, data range]: both images are offset by the truth's
minimum (which changes neither MAE, RMSE, PSNR, Pearson nor FRC) with data range =
max − min of the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from fly64_kedro.metrics import quality
from fly64_kedro.metrics.alignment import Alignment, DegenerateReconstruction, align_to_truth
from fly64_kedro.metrics.frc import frc_crossing, frc_curve
from fly64_kedro.parameters.comparison import ComparisonParams
from fly64_kedro.validation import InputDataError, require_complex_2d, require_field

COMPONENTS: tuple[str, str] = ("amplitude", "phase")
IMAGE_METRICS: tuple[str, ...] = ("ms_ssim", "ssim", "mae", "rmse", "psnr", "pearson")
ALIGNMENT_METRICS: tuple[str, ...] = (
    "shift_y_px", "shift_x_px", "registration_rejected", "illuminated_fraction", "scale", "phase_offset_rad",
    "phase_ramp_y_rad_per_px", "phase_ramp_x_rad_per_px",
)
ROW_COLUMNS: tuple[str, ...] = ("dose", "view", "split", "method", "component", "metric", "value", "status", "reason")


def component_images(truth: np.ndarray, aligned: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """component → (truth, reconstruction) real images (h, w) float64: amplitude, and phase in rad.

    The reconstruction's phase is unwrapped towards the truth's: arg(truth) + wrap(arg(rec) − arg(truth)).
    A zero pixel (nothing reconstructed) reads phase 0, as ``np.angle`` gives.
    """
    truth_phase = np.angle(truth).astype(np.float64)
    difference = np.angle(np.exp(1j * (np.angle(aligned).astype(np.float64) - truth_phase)))
    return {
        "amplitude": (np.abs(truth).astype(np.float64), np.abs(aligned).astype(np.float64)),
        "phase": (truth_phase, truth_phase + difference),
    }


def expected_metrics(params: ComparisonParams) -> list[tuple[str, str]]:
    """Every (component, metric) a cell reports, in table order (phase MS-SSIM is the headline)."""
    per_image = [*IMAGE_METRICS, *params.frc.thresholds]
    return ([(component, metric) for component in COMPONENTS for metric in per_image]
            + [("alignment", metric) for metric in ALIGNMENT_METRICS])


def image_metrics(
    reference: np.ndarray, test: np.ndarray, illuminated: np.ndarray, params: ComparisonParams,
) -> tuple[dict[str, float], np.ndarray, np.ndarray, dict[str, Any]]:
    """Every metric of one real image against its truth (h, w).

    Returns (metric → value, FRC frequencies (R,) cycles/px, FRC curve (R,), the MS-SSIM
    settings used and the data range). Peak and SSIM range = max − min of ``reference``.
    The FRC is taken over the ``illuminated`` (h, w) pixels only (resolution is a property
    of what was measured); every other metric over the whole region.
    """
    peak = quality.data_range(reference)
    floor = reference.min()
    try:
        settings = quality.adapt_ms_ssim(reference.shape, params.ms_ssim)
    except ValueError as exc:
        raise DegenerateReconstruction(str(exc)) from exc
    frequency, curve = frc_curve(test, reference, params.frc.tukey_alpha, illuminated)
    values = {
        "ms_ssim": quality.ms_ssim(test - floor, reference - floor, peak, settings, (params.ssim.k1, params.ssim.k2)),
        "ssim": quality.ssim(test - floor, reference - floor, peak, params.ssim),
        "mae": quality.mae(test, reference),
        "rmse": quality.rmse(test, reference),
        "psnr": quality.psnr(test, reference, peak),
        "pearson": quality.pearson(test, reference),
    }
    values.update({name: frc_crossing(frequency, curve, t) for name, t in params.frc.thresholds.items()})
    return values, frequency, curve, {**settings.as_record(), "data_range": peak}


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

    def rows(self, **coordinates: Any) -> list[dict[str, Any]]:
        """Tidy rows: ``coordinates`` (dose, view, split, method) + component, metric, value, status, reason."""
        return [{**coordinates, "component": component, "metric": metric, "value": value,
                 "status": self.status, "reason": self.reason}
                for (component, metric), value in self.metrics.items()]

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
    obj: np.ndarray, canvas_origin_yx: np.ndarray, truth: np.ndarray, ycoords: np.ndarray,
    xcoords: np.ndarray, patch_size: int, params: ComparisonParams,
) -> CellResult:
    """Align one reconstruction canvas (H, W) complex to ``truth`` and measure it.

    ``canvas_origin_yx`` (2,) object pixel of canvas pixel (0, 0); ``ycoords``/``xcoords``
    (n,) object-pixel centres of the evaluated view/split's positions; ``patch_size`` N.
    Raises ``DegenerateReconstruction`` if the arm cannot be aligned.

    Runs with one OpenMP/BLAS thread (threadpoolctl): on these small images extra threads
    only contend (MS-SSIM measured 40× slower with 2 threads on a loaded 2-core machine);
    cells run in parallel through the Kedro runner instead.
    """
    metrics: dict[tuple[str, str], float] = {}
    curves: dict[str, np.ndarray] = {}
    settings: dict[str, Any] = {}
    with threadpool_limits(limits=1):
        alignment = align_to_truth(obj, canvas_origin_yx, truth, ycoords, xcoords, patch_size, params.alignment)
        for component, (reference, test) in component_images(alignment.truth, alignment.aligned).items():
            values, frequency, curves[component], settings[component] = image_metrics(
                reference, test, alignment.illuminated, params)
            curves["frequency"] = frequency
            metrics.update({(component, metric): value for metric, value in values.items()})
    record = alignment.record
    shift, ramp = record["registration_shift_px"], record["phase_ramp_rad_per_px"]
    metrics.update({
        ("alignment", "shift_y_px"): shift[0], ("alignment", "shift_x_px"): shift[1],
        ("alignment", "registration_rejected"): float(record["registration_rejected"]),
        ("alignment", "illuminated_fraction"): record["illuminated_fraction"],
        ("alignment", "scale"): record["scale"], ("alignment", "phase_offset_rad"): record["phase_offset_rad"],
        ("alignment", "phase_ramp_y_rad_per_px"): ramp[0], ("alignment", "phase_ramp_x_rad_per_px"): ramp[1],
    })
    ordered = {key: metrics[key] for key in expected_metrics(params)}
    return CellResult("ok", "", ordered, alignment, curves,
                      {"status": "ok", "reason": "", "alignment": record, "components": settings})


def score_cell(
    reconstruction: dict[str, Any], truth: np.ndarray, ycoords: np.ndarray, xcoords: np.ndarray,
    patch_size: int, params: ComparisonParams, dataset: str,
) -> CellResult:
    """Score an object payload (``object`` (H, W) complex64, ``canvas_origin_yx`` (2,), ``_metadata.status``).

    A payload whose status is not 'ok' (upstream skipped or failed) yields NaN rows with its
    status and reason; an 'ok' payload with non-finite pixels, or one that cannot be
    aligned, yields status 'failed' with the cause. An 'ok' payload with a missing field or
    an empty object is a contract violation: ``InputDataError`` naming ``dataset``.
    """
    metadata = reconstruction.get("_metadata") or {}
    status = metadata.get("status", "ok")
    if status != "ok":
        return not_scored(status, metadata.get("reason") or f"upstream status '{status}'", params)
    obj = require_field(reconstruction, dataset, "object")
    origin = require_field(reconstruction, dataset, "canvas_origin_yx").astype(np.float64)
    if origin.shape != (2,) or not np.isfinite(origin).all():
        raise InputDataError(dataset, "canvas_origin_yx", "(2,) finite object-pixel coordinates", origin.tolist())
    if obj.size == 0:
        raise InputDataError(dataset, "object", "a non-empty canvas when status is 'ok'", f"shape {obj.shape}")
    if not np.isfinite(obj).all():
        bad = int((~np.isfinite(obj)).sum())
        return not_scored("failed", f"{dataset}: {bad} non-finite pixels in the reconstruction", params)
    obj = require_complex_2d(reconstruction, dataset, "object")
    try:
        return score_reconstruction(obj, origin, truth, ycoords, xcoords, patch_size, params)
    except DegenerateReconstruction as exc:
        return not_scored("failed", f"{dataset}: {exc}", params)
