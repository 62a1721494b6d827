"""Typed parameters: one pydantic model per concern, validated by Kedro before any node runs.

Each field is constrained and documented by its docstring, in the style of pty-chi's own
options classes. A node that declares ``study: StudyDesign`` receives the validated model.
"""

from fly64_kedro.parameters.study import GroundTruthParams, ScanParams, StudyDesign, ViewSpec

__all__ = ["GroundTruthParams", "ScanParams", "StudyDesign", "ViewSpec"]
