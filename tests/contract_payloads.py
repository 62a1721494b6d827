"""Payloads that satisfy the stage contracts, for tests that build their inputs by hand.

A support module rather than fixtures in ``conftest.py``: plain functions with arguments,
imported by the test modules of several directories.
"""

from __future__ import annotations

from typing import Any


def selection_telemetry(n_positions: int, **overrides: Any) -> dict[str, Any]:
    """Selection telemetry of a test-split ``sparse`` view at 1e3 photons that kept all ``n_positions``.

    ``overrides`` replace fields (e.g. ``view``, ``gridsize``, ``sufficient_for``).
    """
    return {
        "dose": 1e3, "view": "sparse", "split": "test", "selection_strategy": "all", "acceptance_rate": 1.0,
        "spacing_threshold": None, "n_accepted": n_positions, "n_rejected": 0, "overlap_fraction": None,
        "direct_acceptance_rate": None, "geometry_acceptance_bound": None, "effective_min_acceptance": None,
        "below_floor": False, "strategy_decision": None, "n_input_positions": n_positions,
        "probe_diameter_px": 16.0, "measured_overlap": 0.83, "measured_overlap_neighbors": 6, "gridsize": 1,
        "min_positions": {"iterative": 2, "pinn": 1},
        "sufficient_for": {"iterative": n_positions >= 2, "pinn": n_positions >= 1}, **overrides,
    }
