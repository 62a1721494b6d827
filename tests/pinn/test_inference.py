"""Inference and stitching: the canvas mapping every method shares, probe-weighted averages, coverage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pinn_support import canvas_of, one_torch_thread, synthetic_scan, truth_on_canvas

from fly64_kedro.physics.forward import extract_patches
from fly64_kedro.pinn.grouping import inference_groups
from fly64_kedro.pinn.inference import (
    UNCOVERED_FILL,
    predict_patches,
    reconstruct,
    stitch,
)
from fly64_kedro.pinn.network import PINNConfig, build_model
from fly64_kedro.pinn.physics import merge_and_extract, probe_weight

pytestmark = pytest.mark.usefixtures(one_torch_thread.__name__)


def test_stitching_true_patches_rebuilds_the_object_on_the_study_canvas() -> None:
    scan = synthetic_scan(patch_size=32, object_size=128, n_positions=80)
    patches = extract_patches(scan.obj, scan.ycoords, scan.xcoords, 32)
    origin, shape = canvas_of(scan.ycoords, scan.xcoords, 32)
    weight = probe_weight(torch.from_numpy(scan.probe))
    obj, coverage = stitch(torch.from_numpy(patches), scan.ycoords, scan.xcoords, origin, shape, weight, 0.01)
    truth = truth_on_canvas(scan.obj, origin, shape)
    lit = coverage >= 0.01
    assert obj.dtype == np.complex64 and obj.shape == shape and coverage.shape == shape
    np.testing.assert_allclose(obj[lit], truth[lit], rtol=0, atol=1e-5)
    assert (obj[~lit] == UNCOVERED_FILL).all() and (~lit).any()
    expected = np.zeros(shape)
    for y, x in zip(scan.ycoords - origin[0], scan.xcoords - origin[1], strict=True):
        expected[int(y) - 16:int(y) + 16, int(x) - 16:int(x) + 16] += weight.numpy()
    np.testing.assert_allclose(coverage, expected, rtol=1e-5, atol=1e-6)


def test_stitching_weighs_each_prediction_by_its_probe_intensity() -> None:
    """Two overlapping patches that disagree: each pixel leans to the patch whose probe lit it more."""
    size = 8
    weight = torch.zeros(size, size)
    weight[2:6, 2:6] = 1.0
    weight[2:6, 6:8] = 0.25
    patches = torch.stack([torch.full((size, size), 1.0 + 0j), torch.full((size, size), 3.0 + 0j)])
    obj, coverage = stitch(patches.to(torch.complex64), np.array([10.0, 10.0]), np.array([10.0, 14.0]),
                           np.zeros(2), (20, 24), weight, 0.01)
    # the patches cover canvas columns 6…13 and 10…17; canvas column 12 is the first's column 6
    # (weight 0.25) and the second's column 2 (weight 1)
    assert obj[10, 12] == pytest.approx((0.25 * 1 + 1.0 * 3) / 1.25)
    assert obj[10, 8] == pytest.approx(1.0)  # the first patch's lit column 2; the second does not reach it
    assert coverage[10, 12] == pytest.approx(1.25)


def test_gridsize_two_stitches_the_merged_patches_the_physics_saw() -> None:
    scan = synthetic_scan(patch_size=16, object_size=64, n_positions=30)
    model = build_model(PINNConfig(16, 2, 4, 2, 0.1, 1e-3, True), scan.probe_counts, 0, "cpu")
    groups = inference_groups(scan.ycoords, scan.xcoords, 2)
    predicted = predict_patches(model, scan.counts, groups, 8)
    with torch.no_grad():
        raw = model.object_patches(torch.from_numpy(scan.counts).sqrt()[torch.from_numpy(groups.indices)])
        merged = merge_and_extract(raw, torch.from_numpy(groups.offsets), 1e-3, probe_weight(model.probe))
    np.testing.assert_allclose(predicted.numpy(), merged.reshape(-1, 16, 16).numpy(), atol=1e-6)
    assert not np.allclose(predicted.numpy(), raw.reshape(-1, 16, 16).numpy(), atol=1e-3)


def test_reconstruct_times_prediction_and_stitching_for_both_gridsizes() -> None:
    scan = synthetic_scan(patch_size=16, object_size=64, n_positions=30)
    origin, shape = canvas_of(scan.ycoords, scan.xcoords, 16)
    for gridsize in (1, 2):
        model = build_model(PINNConfig(16, gridsize, 4, 2, 0.1, 1e-3, True), scan.probe_counts, 0, "cpu")
        result = reconstruct(model, scan.counts, scan.ycoords, scan.xcoords, origin, shape, 0.01, 8)
        assert result["n_groups"] == 30
        assert result["predict_seconds"] > 0 and result["stitch_seconds"] > 0
        assert result["object"].shape == shape and np.isfinite(result["object"]).all()
        # each position anchors one group of C members: C·n probe-weighted patches are averaged
        total = float(probe_weight(model.probe).sum())
        assert result["coverage"].sum() == pytest.approx(gridsize**2 * 30 * total, rel=1e-4)
