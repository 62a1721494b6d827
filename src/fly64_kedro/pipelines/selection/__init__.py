"""Selection: per dose × view × split, the scan view kept by minimum spacing, with telemetry."""

from fly64_kedro.pipelines.selection.pipeline import create_pipeline

__all__ = ["create_pipeline"]
