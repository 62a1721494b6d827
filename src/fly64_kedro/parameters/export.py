"""Export parameters: the physical scale written into every ptychodus product (``params:export``).

The study is computed in pixels. A ptychodus product is in metres, so the export states one
object pixel size; every length it writes (pixel geometry, object centre, scan positions) is
object pixels × that size. The photon energy and the detector pixel size complete the
far-field geometry: the detector distance written is the one for which ptychodus's own
relation, object pixel = λ·z / (N·detector pixel), gives back ``pixel_size_m``.
"""

from __future__ import annotations

from pydantic import Field

from fly64_kedro.parameters.study import _Strict

PLANCK_EV_M = 1.239841984e-06
"""h·c in eV·m: wavelength (m) = PLANCK_EV_M / energy (eV)."""


class ExportParams(_Strict):
    """The physical scale of the exported ptychodus products (``params:export``)."""

    pixel_size_m: float = Field(gt=0, lt=1e-3)
    """Side of one (square) object and probe pixel in metres; positions in metres = object pixels × this."""

    photon_energy_eV: float = Field(gt=0)
    """Photon energy written as the product's ``photon_energy_eV`` (eV)."""

    detector_pixel_size_m: float = Field(gt=0, lt=1e-2)
    """Side of one detector pixel (m); sets the detector distance written, z = N·pixel_size·detector_pixel/λ."""

    def wavelength_m(self) -> float:
        """Photon wavelength (m) at ``photon_energy_eV``."""
        return PLANCK_EV_M / self.photon_energy_eV

    def detector_distance_m(self, patch_size: int) -> float:
        """Detector distance (m) for which λ·z / (N·detector pixel) equals ``pixel_size_m`` at N = ``patch_size``."""
        return patch_size * self.pixel_size_m * self.detector_pixel_size_m / self.wavelength_m()
