"""Study design, ground-truth synthesis and scan parameters."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SPLITS: tuple[str, str] = ("train", "test")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_NAMES = frozenset({*SPLITS, "selection"})
"""Names a view may not take: the splits and the selection jobs' namespace share its level."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class ViewSpec(_Strict):
    """One scan view of the study."""

    overlap_fraction: float | None = None
    """Nominal overlap f; positions are kept at least (1 − f)·N apart. None keeps every position."""

    gridsize: Literal[1, 2] = 1
    """PINN grouping: 1 → each position alone, 2 → groups of C = 4 neighbours."""

    @field_validator("overlap_fraction")
    @classmethod
    def _fraction_in_range(cls, value: float | None) -> float | None:
        if value is not None and not 0.0 <= value < 1.0:
            raise ValueError(f"overlap_fraction must be in [0, 1); got {value}")
        return value


class StudyDesign(_Strict):
    """The study grid and its shared constants (``params:study``)."""

    doses: list[float] = Field(min_length=1)
    """Expected photons per diffraction pattern, averaged over the scan; each > 0."""

    patch_size: int = Field(gt=0)
    """N: detector and patch side in pixels; a positive even integer."""

    views: dict[str, ViewSpec] = Field(min_length=1)
    """View name → spec. Names become namespaces (e.g. ``dose_1000.sparse``)."""

    neighbor_count: int = Field(gt=0)
    """K: nearest neighbours a gridsize-2 group draws from; must be ≥ C = gridsize²."""

    split_axis: Literal["y", "x"] = "y"
    """Axis of the spatial split; train = coordinate < midpoint of the scanned range."""

    root_seed: int = Field(ge=0)
    """Every random draw derives its seed from this one."""

    @field_validator("doses")
    @classmethod
    def _doses_positive(cls, doses: list[float]) -> list[float]:
        bad = [dose for dose in doses if not (math.isfinite(dose) and dose > 0)]
        if bad:
            raise ValueError(f"every dose must be a finite number > 0 photons; got {bad}")
        namespaces = [dose_namespace(dose) for dose in doses]
        if len(set(namespaces)) != len(namespaces):
            raise ValueError(f"doses must be distinct (each names its jobs, e.g. {namespaces[0]}); got {doses}")
        return doses

    @field_validator("views")
    @classmethod
    def _views_are_identifiers(cls, views: dict[str, ViewSpec]) -> dict[str, ViewSpec]:
        bad = [name for name in views if not IDENTIFIER.fullmatch(name) or name in RESERVED_NAMES]
        if bad:
            raise ValueError(f"view names become namespaces and file folders: each must be an identifier (letters, "
                             f"digits, '_'; not starting with a digit) and none of {sorted(RESERVED_NAMES)}; got {bad}")
        return views

    @field_validator("patch_size")
    @classmethod
    def _even_patch(cls, size: int) -> int:
        if size % 2:
            raise ValueError(f"patch_size must be a positive even integer; got {size}")
        return size

    @model_validator(mode="after")
    def _neighbours_cover_groups(self) -> StudyDesign:
        largest_group = max(view.gridsize for view in self.views.values()) ** 2
        if self.neighbor_count < largest_group:
            raise ValueError(
                f"neighbor_count must be ≥ C = gridsize² = {largest_group}; got {self.neighbor_count}"
            )
        return self

    @model_validator(mode="after")
    def _has_a_gridsize_one_view(self) -> StudyDesign:
        if not any(view.gridsize == 1 for view in self.views.values()):
            raise ValueError("at least one view must have gridsize 1: its network also runs on every other view "
                             f"(the gs1 arm); got gridsizes {({name: v.gridsize for name, v in self.views.items()})}")
        return self

    def spacing_threshold(self, view: str) -> float | None:
        """Minimum centre spacing S = (1 − f)·N in px for a view, None for 'keep all'."""
        fraction = self.views[view].overlap_fraction
        return None if fraction is None else (1.0 - fraction) * self.patch_size

    @property
    def gs1_reference_view(self) -> str:
        """The gridsize-1 view whose network also runs on every view (the first gridsize-1 view)."""
        return next(name for name, view in self.views.items() if view.gridsize == 1)

    def dose_cells(self) -> list[Cell]:
        """One cell per dose (simulation jobs)."""
        return [Cell(float(dose)) for dose in self.doses]

    def network_cells(self) -> list[Cell]:
        """One cell per (dose, view): a network, a selection job."""
        return [Cell(float(dose), view) for dose in self.doses for view in self.views]

    def cells(self) -> list[Cell]:
        """One cell per (dose, view, split): a reconstruction, a scored cell of the study table."""
        return [Cell(float(dose), view, split) for dose in self.doses for view in self.views for split in SPLITS]


@dataclass(frozen=True)
class Cell:
    """A coordinate of the study grid: a dose, optionally a view, optionally a split.

    Its ``namespace`` names the Kedro jobs and the catalog datasets of the cell, e.g.
    ``dose_1000``, ``dose_1000.sparse``, ``dose_1000.sparse.test``.
    """

    dose: float
    view: str | None = None
    split: str | None = None

    @property
    def dose_namespace(self) -> str:
        return dose_namespace(self.dose)

    @property
    def namespace(self) -> str:
        return ".".join(part for part in (self.dose_namespace, self.view, self.split) if part)

    def dataset(self, name: str) -> str:
        """The catalog name of this cell's dataset ``name``, e.g. 'dose_1000.sparse.test.scan_view'."""
        return f"{self.namespace}.{name}"

    def with_split(self, split: str) -> Cell:
        return Cell(self.dose, self.view, split)

    def with_view(self, view: str) -> Cell:
        return Cell(self.dose, view, self.split)

    def __str__(self) -> str:
        return self.namespace


def dose_namespace(dose: float) -> str:
    """Namespace of a dose that keeps its value: 1000.0 → 'dose_1000', 1000.4 → 'dose_1000p4', 0.3 → 'dose_0p3',
    1e22 → 'dose_1e22' (Python's shortest repr, '.' → 'p', '+' dropped): distinct doses, distinct namespaces."""
    text = str(int(dose)) if float(dose).is_integer() and abs(dose) < 1e16 else repr(float(dose))
    return "dose_" + text.replace(".", "p").replace("+", "").replace("-", "m")


class ObjectParams(_Strict):
    """The embedded Siemens-star object."""

    size: int = Field(gt=0)
    """Object side in px."""
    n_spokes: int = Field(ge=4)
    """Dark/bright sector pairs of the star."""
    radius_fraction: float = Field(gt=0, le=1)
    """Star radius as a fraction of half the object side."""
    amplitude_range: tuple[float, float] = (0.55, 1.0)
    """Amplitude on / off the spokes, each in (0, 1]."""
    phase_range_rad: float = Field(ge=0, le=3.14159)
    """Phase on the spokes (rad)."""
    texture_amplitude: float = Field(ge=0, le=0.5)
    """Std of the fine amplitude texture."""
    texture_phase_rad: float = Field(ge=0, le=1.5)
    """Std of the fine phase texture (rad)."""
    texture_correlation_px: float = Field(gt=0)
    """Correlation length of both textures (px)."""

    @field_validator("amplitude_range")
    @classmethod
    def _ordered_amplitudes(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0 < low < high <= 1:
            raise ValueError(f"amplitude_range must satisfy 0 < low < high ≤ 1; got {value}")
        return value


class ProbeParams(_Strict):
    """The embedded zone-plate-like probe (defocused circular aperture)."""

    pupil_radius_fraction: float = Field(gt=0, le=1)
    """Pupil radius as a fraction of the detector's Nyquist frequency."""
    defocus_diameter_fraction: float = Field(gt=0, le=0.9)
    """Geometric diameter of the defocused disc as a fraction of N (≈ 0.5 respects oversampling)."""


USER_GROUND_TRUTH = "user_ground_truth"
"""The catalog entry of a user's own object and probe, read when ``ground_truth.source`` is 'catalog'."""


class GroundTruthParams(_Strict):
    """Where the ground truth comes from (``params:ground_truth``)."""

    source: Literal["synthetic", "catalog"] = "synthetic"
    """'synthetic': a node builds the embedded default; 'catalog': your own file, the ``user_ground_truth`` entry."""
    object: ObjectParams
    """Settings of the synthetic object."""
    probe: ProbeParams
    """Settings of the synthetic probe."""


class ScanParams(_Strict):
    """Scan positions (``params:scan``)."""

    pattern: Literal["random", "raster"] = "random"
    """'random': uniform in the object minus a border of N/2 (the original study); 'raster': jittered grid."""
    n_positions: int = Field(gt=0)
    """Number of scan positions (over both splits)."""
    jitter_px: float = Field(default=1.0, ge=0)
    """Uniform jitter of a raster (px); ignored for 'random'."""
