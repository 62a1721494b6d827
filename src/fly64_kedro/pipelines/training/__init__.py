"""Training: a PINN per dose × view on its train split, then inference and stitching per split."""

from fly64_kedro.pipelines.training.pipeline import create_pipeline

__all__ = ["create_pipeline"]
