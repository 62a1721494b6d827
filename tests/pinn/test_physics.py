"""The network's physics layer against the project's numpy forward model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pinn_support import one_torch_thread, synthetic_scan

from fly64_kedro.physics import forward
from fly64_kedro.pinn.grouping import training_groups
from fly64_kedro.pinn.physics import (
    far_field_counts,
    merge_and_extract,
    pixel_indices,
    scatter_mean,
)

pytestmark = pytest.mark.usefixtures(one_torch_thread.__name__)


def test_true_patches_reproduce_the_simulated_noiseless_counts() -> None:
    scan = synthetic_scan(dose=1e4)
    predicted = far_field_counts(torch.from_numpy(scan.patches), torch.from_numpy(scan.probe_counts)).numpy()
    assert predicted.dtype == np.float32
    np.testing.assert_allclose(predicted, scan.expected, rtol=0, atol=2e-6 * scan.expected.max())
    # and the amplitudes the network compares with the data are those of the numpy model
    amplitude = np.sqrt(forward.far_field_intensity(scan.patches * scan.probe) * scan.intensity_scale)
    np.testing.assert_allclose(np.sqrt(predicted), amplitude, rtol=0, atol=2e-4 * amplitude.max())


def test_merge_then_extract_is_the_identity_for_consistent_patches() -> None:
    scan = synthetic_scan(n_positions=60)
    groups = training_groups(scan.ycoords, scan.xcoords, 2, 7, 3, np.random.default_rng(0))
    patches = torch.from_numpy(scan.patches[groups.indices])  # members cut from one object: they agree
    merged = merge_and_extract(patches, torch.from_numpy(groups.offsets), 1e-3)
    assert merged.shape == patches.shape
    np.testing.assert_allclose(merged.numpy(), patches.numpy(), rtol=0, atol=1e-6)


def test_merge_averages_members_where_they_overlap_and_keeps_them_elsewhere() -> None:
    size = 8
    patches = torch.stack([torch.full((size, size), 1.0 + 0j), torch.full((size, size), 3.0 + 2j)])[None]
    offsets = torch.tensor([[[0, -2], [0, 2]]])  # 4 px apart in x: columns 2…5 of the first overlap
    merged = merge_and_extract(patches.to(torch.complex64), offsets, 1e-3)[0]
    first, second = merged[0].numpy(), merged[1].numpy()
    np.testing.assert_allclose(first[:, :4], 1.0)
    np.testing.assert_allclose(first[:, 4:], 2.0 + 1j)    # mean of the two members
    np.testing.assert_allclose(second[:, :4], 2.0 + 1j)
    np.testing.assert_allclose(second[:, 4:], 3.0 + 2j)


def test_a_probe_weighted_merge_lets_each_members_lit_region_decide() -> None:
    """Where one member's probe is bright and the other's is dim, the merged value is close to the bright one's."""
    size = 8
    weight = torch.zeros(size, size)
    weight[2:6, 2:6] = 1.0   # the lit disc of each member
    weight[weight == 0] = 0.01
    patches = torch.stack([torch.full((size, size), 1.0 + 0j), torch.full((size, size), 3.0 + 2j)])[None]
    offsets = torch.tensor([[[0, -2], [0, 2]]])  # 4 px apart in x
    merged = merge_and_extract(patches.to(torch.complex64), offsets, 1e-3, weight)[0]
    first = merged[0].numpy()
    # first's columns 2…5 are its lit disc; the second member covers columns 4…5 there with its dim periphery
    np.testing.assert_allclose(first[3, 2:4], 1.0, atol=1e-6)
    np.testing.assert_allclose(first[3, 4:6], (1.0 + 0.01 * (3 + 2j)) / 1.01, atol=1e-6)
    # columns 6…7 of the first are its dim periphery, where the second's disc is lit
    np.testing.assert_allclose(first[3, 6:8], (0.01 + 1.0 * (3 + 2j)) / 1.01, atol=1e-6)


def test_scatter_mean_counts_the_patches_at_every_pixel() -> None:
    patches = torch.ones(1, 3, 2, 2, dtype=torch.complex64)
    top, left = torch.tensor([[0, 0, 1]]), torch.tensor([[0, 1, 1]])
    canvas, weight = scatter_mean(patches, pixel_indices(top, left, 2, 4), 4 * 4, 1e-3)
    expected = np.zeros((4, 4))
    for t, l in zip(top[0].tolist(), left[0].tolist(), strict=True):
        expected[t:t + 2, l:l + 2] += 1
    np.testing.assert_array_equal(weight.reshape(4, 4).numpy(), expected)
    np.testing.assert_allclose(canvas.reshape(4, 4).numpy(), (expected > 0).astype(float))


def test_merge_passes_gradients_to_every_member() -> None:
    scan = synthetic_scan(n_positions=30)
    groups = training_groups(scan.ycoords, scan.xcoords, 2, 7, 1, np.random.default_rng(1))
    patches = torch.from_numpy(scan.patches[groups.indices]).requires_grad_()
    counts = far_field_counts(merge_and_extract(patches, torch.from_numpy(groups.offsets), 1e-3),
                              torch.from_numpy(scan.probe_counts))
    counts.sum().backward()
    assert patches.grad is not None and torch.isfinite(patches.grad).all()
    assert (patches.grad.abs().sum(dim=(-2, -1)) > 0).all()
