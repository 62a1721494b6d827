"""Typed stage contracts: what passes between the stages, validated once, when it is loaded.

Every hand-off of the study is one of these values: ``GroundTruth`` (simulation and
comparison only), ``Probe``, ``ScanPositions``, ``TruthPatches``, ``Measurements`` (a dose's
data, or a split of it), ``ScanView`` (measurements of a view's kept positions with its
``SelectionTelemetry``) and ``ObjectEstimate`` (any method's object on its canvas, with its
status). Each converts to and from the NPZ payload (``to_payload``/``from_payload``):
``from_payload`` checks every field and names the dataset, the field, what was expected and
what was found, so a node receives a value it can trust and never checks it again.
``metadata`` is the additive provenance (``provenance.add_stage``) and the lineage.
"""

from fly64_kedro.contracts.checks import InputDataError
from fly64_kedro.contracts.values import (
    CONTRACTS,
    GroundTruth,
    Measurements,
    ObjectEstimate,
    Probe,
    ScanPositions,
    ScanView,
    SelectionTelemetry,
    TruthPatches,
)

__all__ = ["CONTRACTS", "GroundTruth", "InputDataError", "Measurements", "ObjectEstimate", "Probe", "ScanPositions",
           "ScanView", "SelectionTelemetry", "TruthPatches"]
