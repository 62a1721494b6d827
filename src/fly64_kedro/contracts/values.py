"""The contract values: arrays with their units and shapes, and the metadata that travels with them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from fly64_kedro.contracts.checks import (
    InputDataError,
    require_complex_2d,
    require_field,
    require_finite,
    require_positions,
    require_probe,
)

METADATA = "_metadata"


def _metadata(payload: dict[str, Any]) -> dict[str, Any]:
    return dict(payload.get(METADATA) or {})


@dataclass(eq=False)
class GroundTruth:
    """The known object (H, W) and probe (N, N), complex64: what results are compared against, nothing else."""

    obj: np.ndarray
    probe: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_payload(cls, payload: dict[str, Any], dataset: str) -> GroundTruth:
        """``objectGuess`` and ``probeGuess``: complex, 2-D, finite; the probe square and not zero."""
        return cls(require_complex_2d(payload, dataset, "objectGuess"), require_probe(payload, dataset),
                   _metadata(payload))

    def to_payload(self) -> dict[str, Any]:
        return {"objectGuess": self.obj, "probeGuess": self.probe, METADATA: self.metadata}

    def checked_for(self, patch_size: int, dataset: str) -> GroundTruth:
        """This ground truth, when it fits a study of patch size N: probe N × N, object ≥ 2N per side.

        Scan positions keep N/2 from the object's edges, so 2N leaves a scan range of at least
        N px along each axis: room for two splits and for views whose positions are up to N apart.
        """
        if self.probe.shape != (patch_size, patch_size):
            raise InputDataError(dataset, "probeGuess", f"shape ({patch_size}, {patch_size}) (patch_size N)",
                                 f"shape {self.probe.shape}")
        if min(self.obj.shape) < 2 * patch_size:
            raise InputDataError(
                dataset, "objectGuess",
                f"both sides at least 2N = {2 * patch_size} px (positions keep N/2 = {patch_size // 2} px from the "
                f"edges, leaving a scan range of at least N = {patch_size} px per axis)", f"shape {self.obj.shape}",
            )
        return self


@dataclass(eq=False)
class Probe:
    """The known probe (N, N) complex64 given to every method, and its measured 1 − 1/e² diameter (px)."""

    probe: np.ndarray
    diameter_px: float
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_payload(cls, payload: dict[str, Any], dataset: str) -> Probe:
        diameter = _metadata(payload).get("probe_diameter_px")
        if not isinstance(diameter, (int, float)) or not (np.isfinite(diameter) and diameter > 0):
            raise InputDataError(dataset, "_metadata.probe_diameter_px", "a positive number of px", repr(diameter))
        return cls(require_probe(payload, dataset), float(diameter), _metadata(payload))

    def to_payload(self) -> dict[str, Any]:
        return {"probeGuess": self.probe, METADATA: {**self.metadata, "probe_diameter_px": self.diameter_px}}


@dataclass(eq=False)
class ScanPositions:
    """Scan positions (n,) float64 in object pixels (patch centres) and their scan index (n,) int64."""

    ycoords: np.ndarray
    xcoords: np.ndarray
    scan_index: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_payload(cls, payload: dict[str, Any], dataset: str) -> ScanPositions:
        return cls(*require_positions(payload, dataset), _metadata(payload))

    def to_payload(self) -> dict[str, Any]:
        return {"ycoords": self.ycoords, "xcoords": self.xcoords, "scan_index": self.scan_index,
                METADATA: self.metadata}


@dataclass(eq=False)
class TruthPatches:
    """The true object patches ``Y`` (n, N, N) complex64 at the scan positions (n,) (for reference only)."""

    patches: np.ndarray
    ycoords: np.ndarray
    xcoords: np.ndarray
    scan_index: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_payload(cls, payload: dict[str, Any], dataset: str) -> TruthPatches:
        patches = require_field(payload, dataset, "Y")
        if not np.iscomplexobj(patches) or patches.ndim != 3:
            raise InputDataError(dataset, "Y", "complex patches (n, N, N)", f"{patches.dtype} {patches.shape}")
        return cls(patches.astype(np.complex64), *require_positions(payload, dataset, patches.shape[0]),
                   _metadata(payload))

    def to_payload(self) -> dict[str, Any]:
        return {"Y": self.patches, "ycoords": self.ycoords, "xcoords": self.xcoords, "scan_index": self.scan_index,
                METADATA: self.metadata}


@dataclass(eq=False)
class Measurements:
    """Measured data at one dose: what a method may use.

    ``diffraction`` (n, N, N) float32 amplitudes sqrt(photon counts), DC centred;
    ``ycoords``/``xcoords`` (n,) float64 patch centres in object pixels; ``scan_index`` (n,);
    ``probe`` (N, N) complex64 (``probeGuess``, peak 1); ``intensity_scale`` such that the
    expected counts are ``intensity_scale · |fftshift(fft2(probe · patch))|²``.
    """

    diffraction: np.ndarray
    ycoords: np.ndarray
    xcoords: np.ndarray
    scan_index: np.ndarray
    probe: np.ndarray
    intensity_scale: float
    metadata: dict[str, Any] = field(default_factory=dict)

    PER_POSITION: ClassVar[tuple[str, ...]] = ("diffraction", "ycoords", "xcoords", "scan_index")

    @classmethod
    def fields_from_payload(cls, payload: dict[str, Any], dataset: str) -> dict[str, Any]:
        """The checked fields of a measurements payload (for this class and its subclasses)."""
        amplitude = require_field(payload, dataset, "diffraction")
        if amplitude.ndim != 3 or amplitude.shape[1] != amplitude.shape[2]:
            raise InputDataError(dataset, "diffraction", "shape (n, N, N)", f"shape {amplitude.shape}")
        if amplitude.shape[0] == 0:
            raise InputDataError(dataset, "diffraction", "a non-empty set of patterns (n ≥ 1)", "none")
        if not np.issubdtype(amplitude.dtype, np.floating):
            raise InputDataError(dataset, "diffraction", "amplitudes sqrt(counts), float32", f"dtype {amplitude.dtype}")
        require_finite(amplitude, dataset, "diffraction", "finite amplitudes sqrt(counts)")
        n_negative = int(np.count_nonzero(amplitude < 0))
        if n_negative:
            raise InputDataError(dataset, "diffraction", "amplitudes sqrt(counts) ≥ 0",
                                 f"{n_negative} negative value(s) (minimum {float(amplitude.min()):.4g})")
        if amplitude.size and float(amplitude.max()) ** 2 >= float(np.finfo(np.float32).max):
            raise InputDataError(dataset, "diffraction", "counts = diffraction² finite in float32 (< 3.4e38)",
                                 f"maximum amplitude {amplitude.max():.3g}")
        ycoords, xcoords, scan_index = require_positions(payload, dataset, amplitude.shape[0])
        probe = require_probe(payload, dataset)
        if probe.shape != amplitude.shape[1:]:
            raise InputDataError(dataset, "probeGuess", f"shape {amplitude.shape[1:]} (the patterns' N × N)",
                                 f"shape {probe.shape}")
        scale = require_field(payload, dataset, "intensity_scale")
        if scale.size != 1 or not np.isfinite(scale).all() or not float(scale.reshape(())) > 0:
            raise InputDataError(dataset, "intensity_scale", "one finite number > 0", repr(scale))
        return {"diffraction": amplitude.astype(np.float32), "ycoords": ycoords, "xcoords": xcoords,
                "scan_index": scan_index, "probe": probe, "intensity_scale": float(scale.reshape(())),
                "metadata": _metadata(payload)}

    @classmethod
    def from_payload(cls, payload: dict[str, Any], dataset: str) -> Measurements:
        return cls(**cls.fields_from_payload(payload, dataset))

    def to_payload(self) -> dict[str, Any]:
        return {"diffraction": self.diffraction, "ycoords": self.ycoords, "xcoords": self.xcoords,
                "scan_index": self.scan_index, "probeGuess": self.probe,
                "intensity_scale": np.array(self.intensity_scale, dtype=np.float64), METADATA: self.metadata}

    @property
    def n_positions(self) -> int:
        return int(self.diffraction.shape[0])

    @property
    def patch_size(self) -> int:
        return int(self.probe.shape[0])

    @property
    def counts(self) -> np.ndarray:
        """Photon counts (n, N, N) float32 = diffraction²."""
        return np.square(self.diffraction, dtype=np.float32)

    @property
    def scaled_probe(self) -> np.ndarray:
        """The probe in counts units, probe · sqrt(intensity_scale) (N, N) complex64."""
        return (self.probe * np.sqrt(self.intensity_scale)).astype(np.complex64)

    def subset(self, keep: np.ndarray, metadata: dict[str, Any]) -> Measurements:
        """The positions ``keep`` (bool (n,)) with their patterns; the probe and scale unchanged."""
        return Measurements(*(getattr(self, name)[keep] for name in self.PER_POSITION), self.probe,
                            self.intensity_scale, metadata)


class SelectionTelemetry(BaseModel):
    """How a view's positions were chosen: the original study's five fields and the project's own."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    dose: float
    view: str
    split: str
    selection_strategy: Literal["all", "direct", "greedy"]
    acceptance_rate: float
    spacing_threshold: float | None
    n_accepted: int
    n_rejected: int
    overlap_fraction: float | None
    direct_acceptance_rate: float | None
    geometry_acceptance_bound: float | None
    effective_min_acceptance: float | None
    below_floor: bool
    strategy_decision: dict[str, Any] | None
    n_input_positions: int
    probe_diameter_px: float
    measured_overlap: float | None
    measured_overlap_neighbors: int
    gridsize: int
    min_positions: dict[str, int]
    sufficient_for: dict[str, bool]


@dataclass(eq=False)
class ScanView(Measurements):
    """The measurements of one view's kept positions in one split, and how they were kept (``telemetry``)."""

    telemetry: SelectionTelemetry | None = None

    @classmethod
    def from_payload(cls, payload: dict[str, Any], dataset: str) -> ScanView:
        fields = cls.fields_from_payload(payload, dataset)
        try:
            telemetry = SelectionTelemetry.model_validate(fields["metadata"])
        except ValidationError as exc:
            problem = exc.errors()[0]
            raise InputDataError(dataset, f"_metadata.{'.'.join(map(str, problem['loc']))}",
                                 "selection telemetry written by the selection stage", problem["msg"]) from exc
        return cls(**fields, telemetry=telemetry)


@dataclass(eq=False)
class ObjectEstimate:
    """A method's object (H, W) complex64 on its canvas, or why there is none.

    ``canvas_origin_yx`` (2,) float64 is the object pixel of canvas pixel (0, 0). ``status``
    is 'ok', 'skipped' or 'failed' (then ``reason`` says why and the object is (0, 0)).
    Optional: ``coverage`` (H, W) float32 (how much each pixel was lit, the network's
    stitching), ``loss_history`` (epochs,) and a refined ``probe`` (N, N) complex64.
    """

    object: np.ndarray
    canvas_origin_yx: np.ndarray
    status: str = "ok"
    reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    coverage: np.ndarray | None = None
    loss_history: np.ndarray | None = None
    probe: np.ndarray | None = None

    OPTIONAL: ClassVar[tuple[str, ...]] = ("coverage", "loss_history", "probe")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def unusable(cls, status: str, reason: str, metadata: dict[str, Any], **optional: np.ndarray) -> ObjectEstimate:
        """The estimate of a method that produced no image: a (0, 0) object, the status and reason."""
        return cls(np.zeros((0, 0), np.complex64), np.zeros(2), status, reason, metadata, **optional)

    @classmethod
    def from_payload(cls, payload: dict[str, Any], dataset: str) -> ObjectEstimate:
        metadata = _metadata(payload)
        status = metadata.get("status", "ok")
        origin = require_field(payload, dataset, "canvas_origin_yx").astype(np.float64)
        if origin.shape != (2,) or not np.isfinite(origin).all():
            raise InputDataError(dataset, "canvas_origin_yx", "(2,) finite object-pixel coordinates", origin.tolist())
        obj = require_field(payload, dataset, "object")
        if status == "ok":
            if not np.iscomplexobj(obj) or obj.ndim != 2:
                raise InputDataError(dataset, "object", "a complex 2-D canvas (complex64)", f"{obj.dtype} {obj.shape}")
            if obj.size == 0:
                raise InputDataError(dataset, "object", "a non-empty canvas when status is 'ok'", f"shape {obj.shape}")
        optional = {name: np.asarray(payload[name]) for name in cls.OPTIONAL if name in payload}
        return cls(obj.astype(np.complex64), origin, status, metadata.get("reason"), metadata, **optional)

    def to_payload(self) -> dict[str, Any]:
        payload = {"object": self.object, "canvas_origin_yx": np.asarray(self.canvas_origin_yx, np.float64),
                   METADATA: {**self.metadata, "status": self.status, "reason": self.reason}}
        payload.update({name: getattr(self, name) for name in self.OPTIONAL if getattr(self, name) is not None})
        return payload


CONTRACTS: dict[str, type] = {cls.__name__: cls for cls in (GroundTruth, Probe, ScanPositions, TruthPatches,
                                                              Measurements, ScanView, ObjectEstimate)}
"""Contract name (as a catalog entry's ``contract:``) → class."""
