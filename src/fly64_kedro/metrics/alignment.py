"""Alignment of a reconstruction canvas to the ground truth, identical for every method.

Steps (each recorded):

1. **Evaluated region**: the bounding box of the evaluated view's scan positions
   ± ``margin_fraction``·N (the probe's radius), clipped to the truth and to the
   reconstruction canvas. The box is the same for every arm of a (dose, view, split) cell,
   and for the dense and sparse views of a split it covers nearly the same area: a sparse
   view is scored on the whole area its scan spans, gaps between its probe spots included,
   because leaving those gaps unknown is the cost of scanning sparsely (scoring only the
   lit discs would reward sparse views for the area they never measured).
   **Illuminated pixels** are those within ``margin_fraction``·N of a position (the
   probe's radius). The rest get only the probe's tails or nothing, and each method fills
   them its own way (the network's stitched canvas is 0 beyond its patch crops, LSQML
   keeps its initial guess 1 + 0j where no light reached and partly recovers the tails'
   area). ``unilluminated = 'scored'`` scores every arm's own output there;
   ``'empty'`` sets those pixels to 1 + 0j (empty space) in every arm, so the gaps cost
   every method of a view the same. Either way the global scale and the phase ramp are
   fitted, and the FRC measured, over the illuminated pixels only.
2. **Canvas → object pixels**: canvas pixel (i, j) is object pixel (i, j) + ``canvas_origin_yx``
   (rounded to whole pixels; registration absorbs any fraction).
3. **Sub-pixel registration**: scikit-image ``phase_cross_correlation`` of the truth crop
   (reference) and the reconstruction crop, ``upsample_factor`` per pixel; the shift is
   applied as a Fourier shift of the mirror-extended crop (``fourier_shift_image``). A
   shift longer than ``max_shift_px`` on either axis is rejected (not applied) and recorded.
4. **Border trim** of ``border_trim_px`` on every side of both images (removes the edge pixels
   the shift filled with mirrored content).
5. **Optional phase ramp**: a linear phase a·y + b·x of reconstruction·conj(truth) is
   always measured over the illuminated pixels (``measure_phase_ramp``) and removed only
   if ``remove_phase_ramp``.
6. **Global complex scale**: c = ⟨rec, truth⟩ / ⟨rec, rec⟩ over the illuminated pixels
   (least squares min ‖truth − c·rec‖²) removes the amplitude scale |c| and the phase
   offset arg c; then the unilluminated pixels are set to 1 + 0j if ``unilluminated = 'empty'``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.registration import phase_cross_correlation

from fly64_kedro.parameters.comparison import AlignmentParams


class DegenerateReconstruction(ValueError):
    """The reconstruction cannot be aligned (e.g. it is zero over the evaluated region)."""


_ZERO_OBJECT = "the reconstruction is zero over the evaluated region"


@dataclass(frozen=True)
class Alignment:
    """A reconstruction aligned to the truth over the evaluated region."""

    truth: np.ndarray
    """(h, w) complex64: the truth over the evaluated region, trimmed."""
    aligned: np.ndarray
    """(h, w) complex64: the reconstruction registered, trimmed and scaled onto the truth."""
    illuminated: np.ndarray
    """(h, w) bool: pixels within margin_fraction·N of a scan position."""
    record: dict[str, Any]
    """JSON-ready offsets, shift, scale, ramp and region (see ``align_to_truth``)."""


def evaluation_region(
    ycoords: np.ndarray, xcoords: np.ndarray, patch_size: int, margin_fraction: float,
    truth_shape: tuple[int, int], canvas_origin_yx: np.ndarray, canvas_shape: tuple[int, int],
) -> tuple[int, int, int, int]:
    """Object-pixel box (y0, y1, x0, x1), end-exclusive, that an arm is scored on.

    The positions' bounding box ± margin_fraction·N, clipped to the truth object and to the
    reconstruction canvas (whose pixel (0, 0) is object pixel ``round(canvas_origin_yx)``).
    """
    margin = margin_fraction * patch_size
    origin = np.rint(canvas_origin_yx).astype(np.int64)
    low = [int(np.floor(c.min() - margin)) for c in (ycoords, xcoords)]
    high = [int(np.ceil(c.max() + margin)) + 1 for c in (ycoords, xcoords)]
    box = []
    for axis in range(2):
        start = max(low[axis], 0, int(origin[axis]))
        stop = min(high[axis], truth_shape[axis], int(origin[axis]) + canvas_shape[axis])
        box += [start, stop]
    return box[0], box[1], box[2], box[3]


def illumination_mask(ycoords: np.ndarray, xcoords: np.ndarray, region_yx: tuple[int, int, int, int],
                      radius: float) -> np.ndarray:
    """(h, w) bool over the object-pixel box ``region_yx`` (y0, y1, x0, x1): within ``radius`` px of a position."""
    y0, y1, x0, x1 = region_yx
    pixels = np.stack(np.meshgrid(np.arange(y0, y1), np.arange(x0, x1), indexing="ij"), axis=-1).reshape(-1, 2)
    distance, _ = cKDTree(np.column_stack([ycoords, xcoords])).query(pixels, distance_upper_bound=radius * (1 + 1e-9))
    return np.isfinite(distance).reshape(y1 - y0, x1 - x0)


def measure_phase_ramp(obj: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Linear phase (a, b) in rad/px along (y, x) of z = obj · conj(truth), |a|, |b| < π.

    Two steps: a coarse slope per axis from the phase of the summed neighbour products
    Σ z[k+1]·conj(z[k]) (immune to wrapping, but biased by a residual sub-pixel
    misregistration), then an amplitude-weighted least-squares plane fitted to the small
    wrapped phase that remains once the coarse ramp and the mean phase are removed.
    """
    z = obj * np.conj(truth)
    coarse = (np.angle(np.vdot(z[:-1, :], z[1:, :])), np.angle(np.vdot(z[:, :-1], z[:, 1:])))
    residual = z * np.conj(phase_ramp(z.shape, *coarse))
    weight = np.abs(residual).ravel()
    wrapped = np.angle(residual * np.exp(-1j * np.angle(residual.sum()))).ravel()
    y, x = _centred_axes(z.shape)
    design = np.stack([np.repeat(y, x.size), np.tile(x, y.size), np.ones(z.size)], axis=1)
    fine = np.linalg.lstsq(design * weight[:, None], wrapped * weight, rcond=None)[0]
    return float(coarse[0] + fine[0]), float(coarse[1] + fine[1])


def _centred_axes(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (y (h,), x (w,)) measured from the image centre."""
    return np.arange(shape[0]) - (shape[0] - 1) / 2, np.arange(shape[1]) - (shape[1] - 1) / 2


def phase_ramp(shape: tuple[int, int], slope_y: float, slope_x: float) -> np.ndarray:
    """exp(i·(a·y + b·x)) over (shape), y and x in pixels from the image centre."""
    y, x = _centred_axes(shape)
    return np.exp(1j * (slope_y * y[:, None] + slope_x * x[None, :]))


def fourier_shift_image(image: np.ndarray, shift_yx: np.ndarray) -> np.ndarray:
    """``image`` (h, w) translated by ``shift_yx`` px (sub-pixel) via the Fourier shift theorem.

    The image is first mirrored into (2h, 2w) so that its periodic extension is continuous:
    the opposite edges of a crop then do not ring through the interior, and what moves in
    at an edge is the mirror image of the edge, not the opposite side.
    """
    if not np.any(shift_yx):
        return image
    height, width = image.shape
    mirrored = np.pad(image, ((0, height), (0, width)), mode="symmetric")
    shifted = np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(mirrored), shift_yx))[:height, :width]
    return shifted if np.iscomplexobj(image) else shifted.real


def complex_scale(obj: np.ndarray, truth: np.ndarray) -> complex:
    """Least-squares c minimising ‖truth − c·obj‖²: ⟨obj, truth⟩ / ⟨obj, obj⟩."""
    power = np.vdot(obj, obj).real
    if not power > 0:
        raise DegenerateReconstruction(_ZERO_OBJECT)
    return complex(np.vdot(obj, truth) / power)


def align_to_truth(
    obj: np.ndarray, canvas_origin_yx: np.ndarray, truth: np.ndarray, ycoords: np.ndarray,
    xcoords: np.ndarray, patch_size: int, params: AlignmentParams,
) -> Alignment:
    """Align a reconstruction canvas (H, W) complex to the truth object (steps in the module doc).

    ``canvas_origin_yx`` (2,) is the object pixel of canvas pixel (0, 0); ``ycoords``,
    ``xcoords`` (n,) are the object-pixel centres of the evaluated view's positions and N is
    ``patch_size``. The record holds ``region_yx`` [y0, y1, x0, x1] (object pixels, end
    exclusive, after the trim), ``canvas_offset_px`` (integer canvas origin used) and
    ``canvas_origin_residual_px`` (its rounding), ``registration_shift_px`` [dy, dx] (the
    shift applied to the reconstruction; zeros if rejected), ``registration_measured_px``,
    ``registration_rejected``, ``registration_error`` (scikit-image's; None if undefined),
    ``illuminated_fraction`` of the region, ``unilluminated`` (the rule), ``scale`` |c|,
    ``phase_offset_rad`` arg c, ``phase_ramp_rad_per_px`` [a, b] (measured), and
    ``phase_ramp_removed``.
    """
    origin = np.rint(canvas_origin_yx).astype(np.int64)
    y0, y1, x0, x1 = evaluation_region(ycoords, xcoords, patch_size, params.margin_fraction,
                                       truth.shape, canvas_origin_yx, obj.shape)
    trim = params.border_trim_px
    if min(y1 - y0, x1 - x0) <= 2 * trim + 1:
        raise DegenerateReconstruction(
            f"evaluated region [{y0}:{y1}, {x0}:{x1}] (positions ± margin, within the truth "
            f"{truth.shape} and the canvas {obj.shape} at {origin.tolist()}) leaves no pixels after a {trim}-px trim"
        )
    truth_crop = truth[y0:y1, x0:x1].astype(np.complex128)
    rec_crop = obj[y0 - origin[0]:y1 - origin[0], x0 - origin[1]:x1 - origin[1]].astype(np.complex128)

    if not np.abs(rec_crop).max() > 0:
        raise DegenerateReconstruction(_ZERO_OBJECT)
    if params.registration_image == "amplitude":
        reference, moving = np.abs(truth_crop), np.abs(rec_crop)
    else:
        reference, moving = truth_crop, rec_crop
    measured, error, _ = phase_cross_correlation(reference, moving, upsample_factor=params.upsample_factor)
    rejected = bool(np.max(np.abs(measured)) > params.max_shift_px)
    shift = np.zeros(2) if rejected else np.asarray(measured, dtype=np.float64)
    rec_shifted = fourier_shift_image(rec_crop, shift)

    inner = (slice(trim, rec_shifted.shape[0] - trim), slice(trim, rec_shifted.shape[1] - trim))
    truth_trim, rec_trim = truth_crop[inner], rec_shifted[inner]
    region = (y0 + trim, y1 - trim, x0 + trim, x1 - trim)
    lit = illumination_mask(ycoords, xcoords, region, params.margin_fraction * patch_size)
    ramp = measure_phase_ramp(rec_trim * lit, truth_trim)
    if params.remove_phase_ramp:
        rec_trim = rec_trim * np.conj(phase_ramp(rec_trim.shape, *ramp))
    scale = complex_scale(rec_trim * lit, truth_trim)
    aligned = scale * rec_trim
    if params.unilluminated == "empty":
        aligned[~lit] = 1
    record = {
        "region_yx": list(region),
        "region_rule": "bounding box of the view's positions ± margin_fraction·N, clipped to truth and canvas, "
                       "minus border_trim_px",
        "illuminated_fraction": float(lit.mean()),
        "unilluminated": params.unilluminated,
        "canvas_offset_px": origin.tolist(),
        "canvas_origin_residual_px": (np.asarray(canvas_origin_yx, np.float64) - origin).tolist(),
        "registration_image": params.registration_image,
        "registration_measured_px": [float(v) for v in measured],
        "registration_shift_px": shift.tolist(),
        "registration_rejected": rejected,
        "registration_error": float(error) if np.isfinite(error) else None,
        "scale": abs(scale),
        "phase_offset_rad": float(np.angle(scale)),
        "phase_ramp_rad_per_px": list(ramp),
        "phase_ramp_removed": params.remove_phase_ramp,
    }
    return Alignment(truth_trim.astype(np.complex64), aligned.astype(np.complex64), lit, record)
