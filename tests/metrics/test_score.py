"""Scoring one arm of one cell: perfect scores for the truth itself, honest rows for failed arms."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fly64_kedro.metrics.alignment import illumination_mask
from fly64_kedro.metrics.score import (
    ROW_COLUMNS,
    component_images,
    expected_metrics,
    score_cell,
    score_reconstruction,
)
from fly64_kedro.parameters.comparison import ComparisonParams
from fly64_kedro.validation import InputDataError
from metrics_support import N, canvas_of, comparison_with


def _payload(obj: np.ndarray, origin: np.ndarray, **metadata: str) -> dict:
    return {"object": obj, "canvas_origin_yx": origin, "_metadata": metadata}


def test_truth_scores_perfectly(fly_object, test_positions, params: ComparisonParams) -> None:
    y, x = test_positions
    canvas, origin = canvas_of(fly_object, y, x)
    result = score_reconstruction(canvas, origin, fly_object, y, x, N, params)
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
    assert list(m) == expected_metrics(params)
    json.dumps(result.record, allow_nan=False)  # storable as NPZ/JSON metadata
    curves = result.frc_rows(method="pinn")
    assert len(curves) == 2 * result.frc["frequency"].size
    assert curves[0] == {"method": "pinn", "component": "amplitude", "frequency": result.frc["frequency"][0],
                         "frc": pytest.approx(1.0)}
    settings = result.record["components"]["phase"]
    assert settings["data_range"] == pytest.approx(float(np.ptp(np.angle(result.alignment.truth))))
    assert settings["ms_ssim_scales"] == 5


def test_worse_reconstructions_score_worse(fly_object, test_positions, params: ComparisonParams) -> None:
    y, x = test_positions
    canvas, origin = canvas_of(fly_object, y, x)
    rng = np.random.default_rng(5)
    scores = []
    for std in (0.02, 0.1, 0.3):
        noisy = canvas + std * (rng.standard_normal(canvas.shape) + 1j * rng.standard_normal(canvas.shape))
        scores.append(score_reconstruction(noisy.astype(np.complex64), origin, fly_object, y, x, N, params).metrics)
    for component in ("amplitude", "phase"):
        for metric in ("ms_ssim", "ssim", "psnr", "pearson", "frc50", "frc1over7"):
            values = [s[component, metric] for s in scores]
            assert values[0] >= values[1] >= values[2] and values[0] > values[2], (component, metric, values)
        for metric in ("mae", "rmse"):
            values = [s[component, metric] for s in scores]
            assert values[0] < values[1] < values[2], (component, metric, values)


def test_phase_error_is_the_wrapped_difference(fly_object, test_positions, params: ComparisonParams) -> None:
    """+2.5 rad on 1 % of the spoke pixels (phase ≈ 1 rad) is an error of 2.5 rad, not 2π − 2.5 (branch cut)."""
    y, x = test_positions
    canvas, origin = canvas_of(fly_object, y, x)
    rng = np.random.default_rng(9)
    hit = (np.angle(canvas) > 0.8) & (rng.random(canvas.shape) < 0.01)
    result = score_reconstruction(canvas * np.exp(2.5j * hit), origin, fly_object, y, x, N, params)
    y0, y1, x0, x1 = np.array(result.record["alignment"]["region_yx"]) - np.repeat(origin.astype(int), 2)
    fraction = hit[y0:y1, x0:x1].mean()
    offset = result.metrics["alignment", "phase_offset_rad"]  # least squares moves the rest by this much
    assert result.metrics["alignment", "shift_y_px"] == result.metrics["alignment", "shift_x_px"] == 0.0
    expected = fraction * abs(2.5 + offset) + (1 - fraction) * abs(offset)
    assert result.metrics["phase", "mae"] == pytest.approx(expected, rel=0.01)
    assert result.metrics["phase", "mae"] < 0.9 * fraction * (2 * np.pi - 2.5)


def test_empty_gaps_of_a_sparse_view_cost_every_method_the_same(fly_object) -> None:
    """Two arms equal where the probe lit the object but filling the gaps differently (the network's
    canvas is 0 there, LSQML keeps its flat initial guess 1) score identically with unilluminated 'empty'."""
    y, x = (grid.ravel().astype(np.float64) for grid in np.meshgrid(np.arange(220, 360, 52), np.arange(40, 350, 52),
                                                                      indexing="ij"))
    canvas, origin = canvas_of(fly_object, y, x)
    lit = illumination_mask(y, x, (int(origin[0]), int(origin[0]) + canvas.shape[0],
                                   int(origin[1]), int(origin[1]) + canvas.shape[1]), 0.25 * N)
    network, lsqml = np.where(lit, canvas, 0), np.where(lit, canvas, 1).astype(np.complex64)
    empty, scored = comparison_with(unilluminated="empty"), comparison_with()
    first, second = (score_reconstruction(arm, origin, fly_object, y, x, N, empty) for arm in (network, lsqml))
    assert np.all(first.alignment.aligned[~first.alignment.illuminated] == 1)
    assert 0.3 < first.metrics["alignment", "illuminated_fraction"] < 0.8
    for (component, metric), value in first.metrics.items():  # equal up to each arm's own registration
        tolerance = 0.05 if metric.startswith("shift") else 3e-3  # (one 1/50-px step apart here)
        assert second.metrics[component, metric] == pytest.approx(value, abs=tolerance), (component, metric)
    assert first.metrics["phase", "ms_ssim"] < 0.95  # the gaps do cost something
    raw = [score_reconstruction(arm, origin, fly_object, y, x, N, scored).metrics for arm in (network, lsqml)]
    assert abs(raw[0]["amplitude", "ms_ssim"] - raw[1]["amplitude", "ms_ssim"]) > 0.05  # 'scored': the fill counts


def test_a_zero_pixel_reads_phase_zero(fly_object) -> None:
    truth = fly_object[:4, :4]
    aligned = truth.copy()
    aligned[0, 0] = 0
    reference, test = component_images(truth, aligned)["phase"]
    assert test[0, 0] == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(test.ravel()[1:], reference.ravel()[1:], atol=1e-6)


@pytest.mark.parametrize("status", ["skipped", "failed"])
def test_upstream_status_yields_nan_rows_with_status_and_reason(fly_object, test_positions, params, status) -> None:
    y, x = test_positions
    payload = _payload(np.zeros((0, 0), np.complex64), np.zeros(2), status=status, reason="too few positions (3 < 4)")
    result = score_cell(payload, fly_object, y, x, N, params, "dose_1000.sparse.test.lsqml_object")
    rows = result.rows(dose=1000.0, view="sparse", split="test", method="lsqml")
    assert len(rows) == len(expected_metrics(params))
    assert all(tuple(row) == ROW_COLUMNS for row in rows)
    assert all(math.isnan(row["value"]) for row in rows)
    assert {(row["status"], row["reason"]) for row in rows} == {(status, "too few positions (3 < 4)")}
    assert result.alignment is None and result.frc_rows(method="lsqml") == []


def test_ok_payload_is_scored_and_rows_carry_the_coordinates(fly_object, test_positions, params) -> None:
    y, x = test_positions
    canvas, origin = canvas_of(fly_object, y, x)
    result = score_cell(_payload(canvas, origin, status="ok"), fly_object, y, x, N, params, "d.v.s.pinn_object")
    rows = result.rows(dose=1e4, view="dense", split="train", method="pinn")
    assert rows[0] == {"dose": 1e4, "view": "dense", "split": "train", "method": "pinn", "component": "amplitude",
                       "metric": "ms_ssim", "value": pytest.approx(1.0, abs=1e-6), "status": "ok", "reason": ""}


def test_non_finite_reconstruction_is_a_failed_cell(fly_object, test_positions, params) -> None:
    y, x = test_positions
    canvas, origin = canvas_of(fly_object, y, x)
    canvas = canvas.copy()
    canvas[5, 5] = np.nan
    result = score_cell(_payload(canvas, origin, status="ok"), fly_object, y, x, N, params, "d.v.s.lsqml_object")
    assert result.status == "failed" and "1 non-finite pixels" in result.reason
    assert "d.v.s.lsqml_object" in result.reason


def test_contract_violations_name_the_dataset(fly_object, test_positions, params) -> None:
    y, x = test_positions
    canvas, origin = canvas_of(fly_object, y, x)
    with pytest.raises(InputDataError, match="dataset 'ds', field 'object'.*non-empty"):
        score_cell(_payload(np.zeros((0, 0), np.complex64), origin), fly_object, y, x, N, params, "ds")
    with pytest.raises(InputDataError, match="field 'canvas_origin_yx'"):
        score_cell(_payload(canvas, np.zeros(3)), fly_object, y, x, N, params, "ds")
    with pytest.raises(InputDataError, match="field 'object': expected a complex array"):
        score_cell(_payload(np.abs(canvas), origin), fly_object, y, x, N, params, "ds")
    with pytest.raises(InputDataError, match="field 'object': expected a present array"):
        score_cell({"canvas_origin_yx": origin}, fly_object, y, x, N, params, "ds")
