"""Alignment: a known sub-pixel shift, phase offset, amplitude scale and phase ramp are removed."""

from __future__ import annotations

import numpy as np
import pytest
from metrics_support import canvas_of, comparison_with
from scipy import ndimage

from fly64_kedro.metrics.alignment import (
    DegenerateReconstruction,
    align_to_truth,
    complex_scale,
    fourier_shift_image,
    measure_phase_ramp,
    phase_ramp,
)
from fly64_kedro.metrics.support import Support

SHIFT = np.array([0.37, -0.62])  # px, applied to the truth to make the "reconstruction"
SCALE = 0.8 * np.exp(1j * 0.9)   # global amplitude scale and phase offset


def _shifted(truth: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """The whole object translated by ``shift`` px (scipy's Fourier shift, periodic)."""
    return np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(truth.astype(np.complex128)), shift))


def _noise(shape: tuple[int, int], std: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return std * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))


@pytest.mark.parametrize("noise_std", [0.0, 0.1])
@pytest.mark.parametrize("registration_image", ["complex", "amplitude"])
def test_shift_scale_and_phase_offset_are_recovered(fly_object, test_positions, test_support, noise_std,
                                                   registration_image) -> None:
    y, x = test_positions
    canvas, origin = canvas_of(_shifted(fly_object, SHIFT), y, x)
    reconstruction = (SCALE * (canvas + _noise(canvas.shape, noise_std, 0))).astype(np.complex64)
    params = comparison_with(registration_image=registration_image).alignment
    result = align_to_truth(reconstruction, origin, fly_object, test_support, params)
    record = result.record
    assert np.allclose(record["registration_shift_px"], -SHIFT, atol=0.05)
    assert not record["registration_rejected"]
    assert record["phase_offset_rad"] == pytest.approx(-np.angle(SCALE), abs=1e-3)
    power = np.mean(np.abs(result.truth[result.support]) ** 2)
    noise_power = 2 * noise_std**2 / power  # least squares over the support shrinks |c| by 1/(1 + this)
    assert record["scale"] == pytest.approx(1 / abs(SCALE) / (1 + noise_power), rel=2e-3)
    residual = np.abs(result.aligned - result.truth)[result.support]
    assert np.sqrt(np.mean(residual**2)) < (0.01 if noise_std == 0 else 1.1 * noise_std * np.sqrt(2))


def test_region_is_the_supports_box_and_outside_the_support_every_arm_reads_flat(fly_object, test_positions,
                                                                                 test_support, params) -> None:
    y, x = test_positions
    canvas, origin = canvas_of(fly_object, y, x)
    result = align_to_truth(canvas, origin, fly_object, test_support, params.alignment)
    assert result.record["region_yx"] == list(test_support.region_yx)
    assert np.array_equal(result.support, test_support.mask)
    assert np.all(result.aligned[~result.support] == 1)
    assert np.array_equal(result.truth, fly_object[slice(*test_support.region_yx[:2]), slice(*test_support.region_yx[2:])])
    assert result.record["support_fraction"] == pytest.approx(test_support.mask.mean())
    assert result.record["support_pixels"] == test_support.mask.sum()


def test_only_the_support_decides_the_fit(fly_object, test_positions, test_support, params) -> None:
    """Garbage outside the support changes neither the global scale nor the aligned support pixels."""
    y, x = test_positions
    canvas, origin = canvas_of(fly_object, y, x)
    outside = ~test_support.mask_over((int(origin[0]), int(origin[0]) + canvas.shape[0],
                                       int(origin[1]), int(origin[1]) + canvas.shape[1]))
    spoiled = np.where(outside, 5 * np.exp(2j), canvas).astype(np.complex64)
    clean = align_to_truth(canvas, origin, fly_object, test_support, params.alignment)
    dirty = align_to_truth(spoiled, origin, fly_object, test_support, params.alignment)
    assert dirty.record["scale"] == pytest.approx(clean.record["scale"], abs=1e-6)
    assert np.allclose(dirty.aligned, clean.aligned, atol=1e-5)


def test_canvas_extent_does_not_change_what_is_scored(fly_object, test_positions, test_support, params) -> None:
    """Two arms with different canvases (origin, size) of the same content are scored on the same pixels;
    a canvas that does not reach the whole region reads the flat object where it ends."""
    y, x = test_positions
    canvas, origin = canvas_of(_shifted(fly_object, SHIFT), y, x)
    larger = np.pad(canvas, ((12, 3), (7, 20)), mode="edge")
    first = align_to_truth(canvas, origin, fly_object, test_support, params.alignment)
    second = align_to_truth(larger, origin - np.array([12.0, 7.0]), fly_object, test_support, params.alignment)
    assert first.record["region_yx"] == second.record["region_yx"]
    assert np.array_equal(first.truth, second.truth)
    assert np.allclose(first.aligned, second.aligned, atol=1e-6)


def test_a_wrong_canvas_origin_is_rejected(fly_object, test_positions, test_support, params) -> None:
    y, x = test_positions
    canvas, origin = canvas_of(fly_object, y, x)
    good = align_to_truth(canvas, origin, fly_object, test_support, params.alignment)
    assert good.record["registration_shift_px"] == [0.0, 0.0]
    assert np.allclose(good.aligned[good.support], good.truth[good.support], atol=1e-5)
    # a canvas whose claimed origin is 10 px off: registration measures it, but it exceeds max_shift_px
    wrong = align_to_truth(canvas, origin + np.array([10.0, 0.0]), fly_object, test_support, params.alignment)
    assert wrong.record["registration_rejected"]
    assert wrong.record["registration_shift_px"] == [0.0, 0.0]
    assert wrong.record["registration_measured_px"] == pytest.approx([-10.0, 0.0], abs=0.05)


def test_phase_ramp_is_measured_always_and_removed_on_request(fly_object, test_positions, test_support) -> None:
    y, x = test_positions
    canvas, origin = canvas_of(_shifted(fly_object, SHIFT), y, x)
    slopes = (0.012, -0.02)  # rad/px
    reconstruction = (canvas * phase_ramp(canvas.shape, *slopes)).astype(np.complex64)
    kept = align_to_truth(reconstruction, origin, fly_object, test_support, comparison_with().alignment)
    removed = align_to_truth(reconstruction, origin, fly_object, test_support,
                             comparison_with(remove_phase_ramp=True).alignment)
    for result in (kept, removed):
        assert result.record["phase_ramp_rad_per_px"] == pytest.approx(slopes, abs=1e-4)
    assert removed.record["phase_ramp_removed"] and not kept.record["phase_ramp_removed"]

    def phase_error(result) -> float:
        return float(np.sqrt(np.mean(np.angle(result.aligned * np.conj(result.truth))[result.support] ** 2)))

    assert phase_error(removed) < 0.02 < 1.0 < phase_error(kept)


def test_ramp_estimate_is_not_fooled_by_a_residual_sub_pixel_shift(fly_object) -> None:
    truth = fly_object[150:350, 40:340].astype(np.complex128)
    moved = _shifted(fly_object, np.array([0.05, 0.0]))[150:350, 40:340]
    assert measure_phase_ramp(moved, truth) == pytest.approx((0.0, 0.0), abs=1e-4)
    ramped = moved * phase_ramp(moved.shape, 0.5, -2.0)  # steep ramps wrap many times
    assert measure_phase_ramp(ramped, truth) == pytest.approx((0.5, -2.0), abs=1e-4)


def test_mirror_extended_fourier_shift_does_not_ring_from_the_edges() -> None:
    """A linear gradient is not periodic: a plain Fourier shift rings, the mirror-extended one is exact inside."""
    image = np.add.outer(np.arange(64.0), 2 * np.arange(80.0))
    shifted = fourier_shift_image(image, np.array([0.5, -0.25]))
    expected = np.add.outer(np.arange(64.0) - 0.5, 2 * (np.arange(80.0) + 0.25))
    plain = np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(image), (0.5, -0.25))).real
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(shifted - expected)[inner].max() < 0.05 < np.abs(plain - expected)[inner].max()
    assert fourier_shift_image(image, np.zeros(2)) is image


def test_degenerate_inputs(fly_object, test_positions, test_support, params) -> None:
    y, x = test_positions
    canvas, origin = canvas_of(fly_object, y, x)
    with pytest.raises(DegenerateReconstruction, match="zero over the support"):
        align_to_truth(np.zeros_like(canvas), origin, fly_object, test_support, params.alignment)
    corner = Support((0, 3, 0, 3), np.ones((3, 3), dtype=bool), 0.05)  # at the truth's edge: no room to trim
    with pytest.raises(DegenerateReconstruction, match="leaves no pixels"):
        align_to_truth(canvas, origin, fly_object, corner, comparison_with(border_trim_px=8, max_shift_px=8).alignment)
    assert complex_scale(2j * canvas, canvas) == pytest.approx(-0.5j)
