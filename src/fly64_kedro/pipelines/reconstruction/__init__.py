"""Reconstruction: pty-chi LSQML per dose × view × split, job records, manifest and skip summary."""

from fly64_kedro.pipelines.reconstruction.pipeline import create_pipeline

__all__ = ["create_pipeline"]
