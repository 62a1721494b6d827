"""Inference and stitching: the canvas mapping every method shares, and coverage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pinn_support import canvas_of, one_torch_thread, synthetic_scan, truth_on_canvas

from fly64_kedro.physics.forward import extract_patches
from fly64_kedro.pinn.inference import UNCOVERED_FILL, crop_size, reconstruct, stitch
from fly64_kedro.pinn.network import PINNConfig, build_model

pytestmark = pytest.mark.usefixtures(one_torch_thread.__name__)


def test_stitching_true_patch_centres_rebuilds_the_object_on_the_study_canvas() -> None:
    scan = synthetic_scan(patch_size=32, object_size=128, n_positions=80)
    crop = crop_size(32, 0.5)
    centres = extract_patches(scan.obj, scan.ycoords, scan.xcoords, crop)
    origin, shape = canvas_of(scan.ycoords, scan.xcoords, 32)
    obj, coverage = stitch(torch.from_numpy(centres), scan.ycoords, scan.xcoords, origin, shape, 1e-3)
    truth = truth_on_canvas(scan.obj, origin, shape)
    covered = coverage > 0
    assert obj.dtype == np.complex64 and obj.shape == shape and coverage.shape == shape
    np.testing.assert_allclose(obj[covered], truth[covered], rtol=0, atol=1e-6)
    assert (obj[~covered] == UNCOVERED_FILL).all()
    expected = np.zeros(shape)
    for y, x in zip(scan.ycoords - origin[0], scan.xcoords - origin[1], strict=True):
        expected[int(y) - crop // 2:int(y) + crop // 2, int(x) - crop // 2:int(x) + crop // 2] += 1
    np.testing.assert_array_equal(coverage, expected)


def test_crop_size_is_even() -> None:
    assert [crop_size(64, f) for f in (0.5, 0.3, 1.0, 0.01)] == [32, 20, 64, 2]


def test_reconstruct_times_prediction_and_stitching_for_both_gridsizes() -> None:
    scan = synthetic_scan(patch_size=16, object_size=64, n_positions=30)
    origin, shape = canvas_of(scan.ycoords, scan.xcoords, 16)
    for gridsize in (1, 2):
        model = build_model(PINNConfig(16, gridsize, 4, 2, 0.1, 1e-3, True), scan.probe_counts, 0, "cpu")
        result = reconstruct(model, scan.counts, scan.ycoords, scan.xcoords, origin, shape, 0.5, 8)
        assert result["n_groups"] == 30 and result["crop_px"] == 8
        assert result["predict_seconds"] > 0 and result["stitch_seconds"] > 0
        assert result["object"].shape == shape and np.isfinite(result["object"]).all()
        # each position anchors one group of C members: C·n patches are averaged
        assert result["coverage"].sum() == gridsize**2 * 30 * 8 * 8
