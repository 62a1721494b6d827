"""Fixtures for the metrics tests: the base comparison parameters, the fly64 object, a test split."""

from __future__ import annotations

import numpy as np
import pytest
from metrics_support import N, base_parameters, comparison_with

from fly64_kedro.metrics.support import Support, view_support
from fly64_kedro.parameters.comparison import ComparisonParams
from fly64_kedro.physics.ground_truth import synthesize_object, synthesize_probe
from fly64_kedro.physics.scan import random_positions, spatial_split_masks


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


@pytest.fixture(scope="session")
def probe() -> np.ndarray:
    """The embedded defocused zone-plate probe at N = 64 with conf/base's settings."""
    settings = base_parameters("simulation")["ground_truth"]["probe"]
    return synthesize_probe(N, settings["pupil_radius_fraction"], settings["defocus_diameter_fraction"] * N)


@pytest.fixture(scope="session")
def test_support(fly_object: np.ndarray, probe: np.ndarray, test_positions, params: ComparisonParams) -> Support:
    """The support of the test split's positions (conf/base threshold)."""
    y, x = test_positions
    return view_support(probe, y, x, fly_object.shape, params.support.threshold)
