"""Alignment of a reconstruction canvas to the ground truth, identical for every method.

Steps (each recorded), all on the cell's **support** (``metrics.support``: the pixels the
view's probe reached, from its positions and known probe, never from the truth):

1. **Region**: the support's bounding box, widened by ``border_trim_px`` on every side
   (clipped to the truth) so that the trim of step 4 leaves the support whole. Canvas pixel
   (i, j) is object pixel (i, j) + ``canvas_origin_yx`` (rounded to whole pixels;
   registration absorbs any fraction); region pixels the canvas does not cover read the
   flat object 1 + 0j.
2. **Sub-pixel registration**: scikit-image ``phase_cross_correlation`` of the truth crop
   (reference) and the reconstruction's support (its mean over the support elsewhere, so
   that no arm's fill outside the support pulls the fit), ``upsample_factor`` per pixel;
   the shift is applied as a Fourier shift of the mirror-extended reconstruction crop
   (``fourier_shift_image``; its own pixels next to the support only interpolate). A
   shift longer than ``max_shift_px`` on either axis is rejected (not applied) and
   recorded; a reconstruction that is constant over the region is not registered.
3. **Border trim** of ``border_trim_px`` on every side of both images (removes the edge
   pixels the shift filled with mirrored content).
4. **Optional phase ramp**: a linear phase a·y + b·x of reconstruction·conj(truth) is
   always measured over the support (``measure_phase_ramp``) and removed only if
   ``remove_phase_ramp``.
5. **Global complex scale**: c = ⟨rec, truth⟩ / ⟨rec, rec⟩ over the support (least
   squares min ‖truth − c·rec‖²) removes the amplitude scale |c| and the phase offset arg c.
6. **Outside the support every arm reads the flat object 1 + 0j** (what every method
   starts from): what lies there is nobody's information, so no arm gains or loses by how
   it fills it. The truth is left whole: a window that straddles the support's edge compares
   the truth's structure with that fill, which is why even the ceiling scores below 1 on a
   view whose support does not cover its region.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.registration import phase_cross_correlation

from fly64_kedro.metrics.support import Support
from fly64_kedro.parameters.comparison import AlignmentParams

FLAT_FILL = 1.0 + 0.0j
"""What every arm reads outside the support: the flat object every method starts from."""


class DegenerateReconstruction(ValueError):
    """The reconstruction cannot be aligned (e.g. it is zero over the evaluated region)."""


_ZERO_OBJECT = "the reconstruction is zero over the support"


@dataclass(frozen=True)
class Alignment:
    """A reconstruction aligned to the truth over the evaluated region."""

    truth: np.ndarray
    """(h, w) complex64: the truth over the evaluated region, trimmed."""
    aligned: np.ndarray
    """(h, w) complex64: the reconstruction registered, trimmed and scaled onto the truth."""
    support: np.ndarray
    """(h, w) bool: the cell's support over the region."""
    record: dict[str, Any]
    """JSON-ready offsets, shift, scale, ramp and region (see ``align_to_truth``)."""


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


def _crop_with_fill(obj: np.ndarray, origin: np.ndarray, region_yx: tuple[int, int, int, int]) -> np.ndarray:
    """The object-pixel box ``region_yx`` of a canvas whose pixel (0, 0) is object pixel ``origin``;
    pixels the canvas does not cover read the flat object 1 + 0j. (h, w) complex128."""
    y0, y1, x0, x1 = region_yx
    crop = np.ones((y1 - y0, x1 - x0), dtype=np.complex128)
    top, left = max(y0, int(origin[0])), max(x0, int(origin[1]))
    bottom, right = min(y1, int(origin[0]) + obj.shape[0]), min(x1, int(origin[1]) + obj.shape[1])
    if top < bottom and left < right:
        crop[top - y0:bottom - y0, left - x0:right - x0] = obj[top - origin[0]:bottom - origin[0],
                                                                left - origin[1]:right - origin[1]]
    return crop


def _support_only(crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The crop on the support, its mean over the support elsewhere: no arm's fill takes part in the fit."""
    if not mask.any():
        return crop
    return np.where(mask, crop, crop[mask].mean())


def _registration(reference: np.ndarray, moving: np.ndarray, params: AlignmentParams) -> tuple[np.ndarray, float | None]:
    """(measured shift (2,) px, scikit-image's error or None); no shift for a constant image."""
    if np.ptp(np.abs(moving)) == 0 and np.ptp(np.angle(moving)) == 0:
        return np.zeros(2), None
    measured, error, _ = phase_cross_correlation(reference, moving, upsample_factor=params.upsample_factor)
    measured = np.asarray(measured, dtype=np.float64)
    if not np.isfinite(measured).all():
        return np.zeros(2), None
    return measured, float(error) if np.isfinite(error) else None


def align_to_truth(
    obj: np.ndarray, canvas_origin_yx: np.ndarray, truth: np.ndarray, support: Support, params: AlignmentParams,
) -> Alignment:
    """Align a reconstruction canvas (H, W) complex to the truth object over a support (steps in the module doc).

    ``canvas_origin_yx`` (2,) is the object pixel of canvas pixel (0, 0); ``support`` the
    cell's support on the object grid. The record holds ``region_yx`` [y0, y1, x0, x1]
    (object pixels, end exclusive, after the trim), ``support_fraction`` (support pixels /
    region pixels), ``support_pixels``, ``support_threshold``, ``canvas_offset_px`` (integer
    canvas origin used) and ``canvas_origin_residual_px`` (its rounding),
    ``registration_shift_px`` [dy, dx] (applied; zeros if rejected),
    ``registration_measured_px``, ``registration_rejected``, ``registration_error``,
    ``scale`` |c|, ``phase_offset_rad`` arg c, ``phase_ramp_rad_per_px`` [a, b] (measured)
    and ``phase_ramp_removed``.
    """
    origin = np.rint(canvas_origin_yx).astype(np.int64)
    trim = params.border_trim_px
    sy0, sy1, sx0, sx1 = support.region_yx
    y0, y1 = max(sy0 - trim, 0), min(sy1 + trim, truth.shape[0])
    x0, x1 = max(sx0 - trim, 0), min(sx1 + trim, truth.shape[1])
    if min(y1 - y0, x1 - x0) <= 2 * trim:
        raise DegenerateReconstruction(
            f"region [{y0}:{y1}, {x0}:{x1}] (the support's box within the truth {truth.shape}) leaves no pixels "
            f"after a {trim}-px trim"
        )
    truth_crop = truth[y0:y1, x0:x1].astype(np.complex128)
    rec_crop = _crop_with_fill(obj, origin, (y0, y1, x0, x1))
    moving = _support_only(rec_crop, support.mask_over((y0, y1, x0, x1)))
    if params.registration_image == "amplitude":
        measured, error = _registration(np.abs(truth_crop), np.abs(moving), params)
    else:
        measured, error = _registration(truth_crop, moving, params)
    rejected = bool(np.max(np.abs(measured)) > params.max_shift_px)
    shift = np.zeros(2) if rejected else measured
    rec_shifted = fourier_shift_image(rec_crop, shift)

    inner = (slice(trim, rec_shifted.shape[0] - trim), slice(trim, rec_shifted.shape[1] - trim))
    truth_trim, rec_trim = truth_crop[inner], rec_shifted[inner]
    region = (y0 + trim, y1 - trim, x0 + trim, x1 - trim)
    mask = support.mask_over(region)
    if not mask.any():
        raise DegenerateReconstruction(f"no support pixel lies in the region {list(region)} after the trim")
    ramp = measure_phase_ramp(rec_trim * mask, truth_trim)
    if params.remove_phase_ramp:
        rec_trim = rec_trim * np.conj(phase_ramp(rec_trim.shape, *ramp))
    scale = complex_scale(rec_trim[mask], truth_trim[mask])
    aligned = scale * rec_trim
    aligned[~mask] = FLAT_FILL
    record = {
        "region_yx": list(region),
        "region_rule": "bounding box of the support (summed probe intensity > support threshold of its maximum), "
                       "clipped to the truth",
        "support_threshold": support.threshold,
        "support_pixels": int(mask.sum()),
        "support_fraction": float(mask.mean()),
        "outside_support": "flat object 1+0j in every arm; the truth is left whole",
        "canvas_offset_px": origin.tolist(),
        "canvas_origin_residual_px": (np.asarray(canvas_origin_yx, np.float64) - origin).tolist(),
        "registration_image": params.registration_image,
        "registration_measured_px": [float(v) for v in measured],
        "registration_shift_px": shift.tolist(),
        "registration_rejected": rejected,
        "registration_error": error,
        "scale": abs(scale),
        "phase_offset_rad": float(np.angle(scale)),
        "phase_ramp_rad_per_px": list(ramp),
        "phase_ramp_removed": params.remove_phase_ramp,
    }
    return Alignment(truth_trim.astype(np.complex64), aligned.astype(np.complex64), mask, record)
