"""Scoring one arm of one cell: honest values on the support, one branch cut, floor and ceiling, failed arms."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from metrics_support import canvas_of
from scipy import ndimage

from fly64_kedro.contracts import InputDataError, ObjectEstimate
from fly64_kedro.metrics.quality import data_range
from fly64_kedro.metrics.score import (
    ROW_COLUMNS,
    component_images,
    expected_metrics,
    score_cell,
    score_reconstruction,
)
from fly64_kedro.metrics.support import Support, view_support

PHASE_METRICS = ("ms_ssim", "ssim", "pearson")


def _payload(obj: np.ndarray, origin: np.ndarray, **metadata: str) -> dict:
    return {"object": obj, "canvas_origin_yx": origin, "_metadata": metadata}


def _estimate(obj: np.ndarray, origin: np.ndarray, **metadata: str) -> ObjectEstimate:
    """The estimate the catalog loads from that payload."""
    return ObjectEstimate.from_payload(_payload(obj, origin, **metadata), "an object dataset")


def _full_support(test_support: Support) -> Support:
    """The support's box, every pixel in it: the whole region is measured."""
    return Support(test_support.region_yx, np.ones_like(test_support.mask), test_support.threshold)


def _sparse_positions() -> tuple[np.ndarray, np.ndarray]:
    """A sparse grid of positions 52 px apart (probe discs barely touch): a sparse view."""
    grid = np.meshgrid(np.arange(220, 360, 52), np.arange(40, 350, 52), indexing="ij")
    return tuple(g.ravel().astype(np.float64) for g in grid)


def test_the_truth_scores_one_on_a_full_support(fly_object, test_positions, test_support, params) -> None:
    y, x = test_positions
    canvas, origin = canvas_of(fly_object, y, x)
    result = score_reconstruction(canvas, origin, fly_object, _full_support(test_support), params)
    m = result.metrics
    for component in ("amplitude", "phase"):
        assert m[component, "ssim"] == pytest.approx(1.0, abs=1e-9)
        assert m[component, "ms_ssim"] == pytest.approx(1.0, abs=1e-6)
        assert m[component, "rmse"] == pytest.approx(0.0, abs=1e-6)
        assert m[component, "pearson"] == pytest.approx(1.0, abs=1e-9)
        assert np.allclose(result.frc[component], 1.0, atol=1e-9)
        for name in params.frc.thresholds:
            assert m[component, name] == pytest.approx(result.frc["frequency"][-1])
    assert (m["alignment", "shift_y_px"], m["alignment", "shift_x_px"]) == (0.0, 0.0)
    assert m["alignment", "scale"] == pytest.approx(1.0, abs=1e-6)
    assert m["alignment", "phase_offset_rad"] == pytest.approx(0.0, abs=1e-6)
    assert m["alignment", "support_fraction"] == 1.0
    assert list(m) == expected_metrics(params)
    json.dumps(result.record, allow_nan=False)  # storable as NPZ/JSON metadata
    curves = result.frc_rows(method="pinn")
    assert len(curves) == 2 * result.frc["frequency"].size
    assert curves[0] == {"method": "pinn", "component": "amplitude", "frequency": result.frc["frequency"][0],
                         "frc": pytest.approx(1.0)}
    settings = result.record["components"]["phase"]
    reference, _ = component_images(result.alignment.truth, result.alignment.aligned, result.alignment.support)["phase"]
    assert settings["data_range"] == pytest.approx(data_range(reference))
    assert settings["ms_ssim_scales_used"] == 5


def test_the_ceiling_is_below_one_where_the_support_does_not_cover_the_region(fly_object, probe, params) -> None:
    """The truth on a sparse view's support and flat elsewhere: perfect on the support's pixels, yet windowed
    metrics straddling the support's edge see the truth's structure against the flat object."""
    y, x = _sparse_positions()
    support = view_support(probe, y, x, fly_object.shape, params.support.threshold)
    canvas, origin = canvas_of(fly_object, y, x)
    m = score_reconstruction(canvas, origin, fly_object, support, params).metrics
    assert m["alignment", "support_fraction"] < 0.8
    for component in ("amplitude", "phase"):
        assert m[component, "rmse"] == pytest.approx(0.0, abs=1e-6)
        assert m[component, "pearson"] == pytest.approx(1.0, abs=1e-9)
        assert m[component, "ms_ssim"] < 0.95 and m[component, "ssim"] < 0.99


def test_the_flat_floor_scores_about_zero(fly_object, test_positions, test_support, params) -> None:
    y, x = test_positions
    canvas, origin = canvas_of(fly_object, y, x)
    m = score_reconstruction(np.ones_like(canvas), origin, fly_object, test_support, params).metrics
    for component in ("amplitude", "phase"):
        assert m[component, "pearson"] == pytest.approx(0.0, abs=1e-9)
        assert m[component, "ms_ssim"] < 0.15
    assert m["alignment", "shift_y_px"] == m["alignment", "shift_x_px"] == 0.0  # a constant is not registered


@pytest.mark.parametrize("fill_phase", [0.0, 2.7])
def test_an_information_free_canvas_scores_zero_whatever_its_phase(fly_object, test_positions, test_support, params,
                                                                   fill_phase) -> None:
    """The reproduction of the per-pixel branch cut: supported pixels of random phase about 2.7 rad, the rest
    filled with e^{i·fill}. With the truth deciding each pixel's wrap this scored phase Pearson 0.80; with one
    branch cut per image it carries (and scores) nothing, whatever the fill."""
    y, x = test_positions
    canvas, origin = canvas_of(fly_object, y, x)
    rng = np.random.default_rng(11)
    inside = test_support.mask_over((int(origin[0]), int(origin[0]) + canvas.shape[0],
                                     int(origin[1]), int(origin[1]) + canvas.shape[1]))
    noise = np.exp(1j * (2.7 + 1.2 * rng.standard_normal(canvas.shape)))
    blind = np.where(inside, noise, np.exp(1j * fill_phase)).astype(np.complex64)
    floor = score_reconstruction(np.ones_like(canvas), origin, fly_object, test_support, params).metrics
    m = score_reconstruction(blind, origin, fly_object, test_support, params).metrics
    assert abs(m["phase", "pearson"]) < 0.05
    assert m["phase", "ms_ssim"] <= floor["phase", "ms_ssim"] + 0.05
    assert m["phase", "ssim"] < 0.05


def test_a_contrast_inverted_phase_correlates_negatively(fly_object, test_positions, test_support, params) -> None:
    y, x = test_positions
    canvas, origin = canvas_of(fly_object, y, x)
    inverted = (np.abs(canvas) * np.exp(-1j * np.angle(canvas))).astype(np.complex64)
    result = score_reconstruction(inverted, origin, fly_object, test_support, params)
    assert result.metrics["phase", "pearson"] < -0.95
    assert np.nanmedian(result.frc["phase"]) < -0.5
    assert result.metrics["phase", "frc50"] == 0.0  # nothing resolved


def test_a_recovered_truth_scores_as_its_noisy_copy(fly_object, test_positions, test_support, params) -> None:
    """Shift, global phase, scale and noise on the truth: the scoring path undoes the first three, so the
    result scores as the unshifted noisy copy does."""
    y, x = test_positions
    noisy = fly_object + 0.05 * (np.random.default_rng(6).standard_normal(fly_object.shape)
                                 + 1j * np.random.default_rng(7).standard_normal(fly_object.shape))
    shifted = np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(noisy), (0.43, -0.71)))
    recovered = 0.7 * np.exp(1.1j) * shifted
    plain_canvas, origin = canvas_of(noisy.astype(np.complex64), y, x)
    moved_canvas, _ = canvas_of(recovered.astype(np.complex64), y, x)
    plain = score_reconstruction(plain_canvas, origin, fly_object, test_support, params).metrics
    moved = score_reconstruction(moved_canvas, origin, fly_object, test_support, params).metrics
    assert moved["alignment", "shift_y_px"] == pytest.approx(-0.43, abs=0.03)
    for component in ("amplitude", "phase"):
        for metric in ("ms_ssim", "ssim", "pearson"):
            assert moved[component, metric] == pytest.approx(plain[component, metric], abs=0.01), (component, metric)
        assert moved[component, "rmse"] == pytest.approx(plain[component, "rmse"], rel=0.05)


def test_worse_reconstructions_score_worse(fly_object, test_positions, test_support, params) -> None:
    y, x = test_positions
    canvas, origin = canvas_of(fly_object, y, x)
    rng = np.random.default_rng(5)
    scores = []
    for std in (0.02, 0.1, 0.3):
        noisy = canvas + std * (rng.standard_normal(canvas.shape) + 1j * rng.standard_normal(canvas.shape))
        scores.append(score_reconstruction(noisy.astype(np.complex64), origin, fly_object, test_support,
                                           params).metrics)
    for component in ("amplitude", "phase"):
        for metric in ("ms_ssim", "ssim", "psnr", "pearson", "frc50", "frc1over7"):
            values = [s[component, metric] for s in scores]
            assert values[0] >= values[1] >= values[2] and values[0] > values[2], (component, metric, values)
        for metric in ("mae", "rmse"):
            values = [s[component, metric] for s in scores]
            assert values[0] < values[1] < values[2], (component, metric, values)


def test_pixels_outside_the_support_are_nobodys(fly_object, test_positions, test_support, params) -> None:
    """Two arms equal on the support but filled differently elsewhere score identically."""
    y, x = test_positions
    canvas, origin = canvas_of(fly_object, y, x)
    inside = test_support.mask_over((int(origin[0]), int(origin[0]) + canvas.shape[0],
                                     int(origin[1]), int(origin[1]) + canvas.shape[1]))
    first = score_reconstruction(np.where(inside, canvas, 0.2j).astype(np.complex64), origin, fly_object,
                                 test_support, params).metrics
    second = score_reconstruction(np.where(inside, canvas, 1).astype(np.complex64), origin, fly_object,
                                  test_support, params).metrics
    for key, value in first.items():
        assert second[key] == pytest.approx(value, abs=1e-4, nan_ok=True), key


def test_a_support_too_small_for_a_metric_gives_nan_with_a_reason(fly_object, params) -> None:
    y, x = np.array([300.0]), np.array([200.0])
    support = Support((299, 302, 199, 203), np.ones((3, 4), dtype=bool), 0.05)  # 3 × 4 px: a sliver
    canvas, origin = canvas_of(fly_object, y, x)
    result = score_reconstruction(canvas, origin, fly_object, support, params)
    rows = {(row["component"], row["metric"]): row for row in result.rows(method="lsqml")}
    for metric, words in (("ms_ssim", "too small for MS-SSIM"), ("ssim", "SSIM window")):
        row = rows["phase", metric]
        assert math.isnan(row["value"]) and row["status"] == "undefined" and words in row["reason"]
    assert rows["phase", "rmse"]["status"] == "ok" and rows["phase", "rmse"]["value"] == pytest.approx(0, abs=1e-6)
    assert result.record["undefined"]["phase.ms_ssim"] == rows["phase", "ms_ssim"]["reason"]


@pytest.mark.parametrize("status", ["skipped", "failed"])
def test_upstream_status_yields_nan_rows_with_status_and_reason(fly_object, test_support, params, status) -> None:
    estimate = _estimate(np.zeros((0, 0), np.complex64), np.zeros(2), status=status, reason="too few positions (3 < 4)")
    result = score_cell(estimate, fly_object, test_support, params, "dose_1000.sparse.test.lsqml_object")
    rows = result.rows(dose=1000.0, view="sparse", split="test", method="lsqml")
    assert len(rows) == len(expected_metrics(params))
    assert all(tuple(row) == ROW_COLUMNS for row in rows)
    assert all(math.isnan(row["value"]) for row in rows)
    assert {(row["status"], row["reason"]) for row in rows} == {(status, "too few positions (3 < 4)")}
    assert result.alignment is None and result.frc_rows(method="lsqml") == []


def test_ok_payload_is_scored_and_rows_carry_the_coordinates(fly_object, test_positions, test_support, params) -> None:
    y, x = test_positions
    canvas, origin = canvas_of(fly_object, y, x)
    result = score_cell(_estimate(canvas, origin, status="ok"), fly_object, _full_support(test_support), params,
                        "d.v.s.pinn_object")
    rows = result.rows(dose=1e4, view="dense", split="train", method="pinn")
    assert rows[0] == {"dose": 1e4, "view": "dense", "split": "train", "method": "pinn", "component": "amplitude",
                       "metric": "ms_ssim", "value": pytest.approx(1.0, abs=1e-6), "status": "ok", "reason": ""}


def test_non_finite_reconstruction_is_a_failed_cell(fly_object, test_positions, test_support, params) -> None:
    y, x = test_positions
    canvas, origin = canvas_of(fly_object, y, x)
    canvas = canvas.copy()
    canvas[5, 5] = np.nan
    result = score_cell(_estimate(canvas, origin, status="ok"), fly_object, test_support, params, "d.v.s.lsqml_object")
    assert result.status == "failed" and "1 non-finite pixels" in result.reason
    assert "d.v.s.lsqml_object" in result.reason


def test_contract_violations_name_the_dataset(fly_object, test_positions) -> None:
    y, x = test_positions
    canvas, origin = canvas_of(fly_object, y, x)
    with pytest.raises(InputDataError, match="dataset 'ds', field 'object'.*non-empty"):
        ObjectEstimate.from_payload(_payload(np.zeros((0, 0), np.complex64), origin), "ds")
    with pytest.raises(InputDataError, match="field 'canvas_origin_yx'"):
        ObjectEstimate.from_payload(_payload(canvas, np.zeros(3)), "ds")
    with pytest.raises(InputDataError, match="field 'object': expected a complex 2-D canvas"):
        ObjectEstimate.from_payload(_payload(np.abs(canvas), origin), "ds")
    with pytest.raises(InputDataError, match="field 'object': expected a present array"):
        ObjectEstimate.from_payload({"canvas_origin_yx": origin}, "ds")
