"""Fixtures for the metrics tests: the base comparison parameters, the fly64 object, a test split."""

from __future__ import annotations

import numpy as np
import pytest

from fly64_kedro.parameters.comparison import ComparisonParams
from fly64_kedro.physics.ground_truth import synthesize_object
from fly64_kedro.physics.scan import random_positions, spatial_split_masks
from metrics_support import N, base_parameters, comparison_with


@pytest.fixture(scope="session")
def params() -> ComparisonParams:
    """The base environment's comparison parameters."""
    return comparison_with()


@pytest.fixture(scope="session")
def fly_object() -> np.ndarray:
    """The embedded Siemens-star object with conf/base's settings at 384² (the test geometry below)."""
    settings = {**base_parameters("simulation")["ground_truth"]["object"], "size": 384}
    return synthesize_object(seed=7, **settings)


@pytest.fixture(scope="session")
def test_positions(fly_object: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) of the test split of a 720-position random scan at N = 64."""
    y, x = random_positions(fly_object.shape, N, 720, np.random.default_rng(3))
    _, test, _ = spatial_split_masks(y)
    return y[test], x[test]
