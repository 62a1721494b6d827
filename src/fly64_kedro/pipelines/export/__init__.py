"""Export: every arm of every (dose, view, split) cell as a ptychodus product file."""

from fly64_kedro.pipelines.export.pipeline import create_pipeline

__all__ = ["create_pipeline"]
