"""Simulation: ground truth → probe, scan, truth patches; per dose: Poisson counts and the split."""

from fly64_kedro.pipelines.simulation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
