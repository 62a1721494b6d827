"""Comparison: every arm of every (dose, view, split) aligned and scored the same way; table, summary, figures."""

from fly64_kedro.pipelines.comparison.pipeline import create_pipeline

__all__ = ["create_pipeline"]
