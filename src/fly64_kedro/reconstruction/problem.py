"""A reconstruction problem in pty-chi's conventions, built from measurements.

pty-chi takes intensities with DC at the centre (``fft_shift=True``) and its unnormalised
forward model ``|fft2(probe · patch)|²`` predicts them, so the data are photon counts =
diffraction² and the probe is ``probeGuess · sqrt(intensity_scale)``. Its positions are patch
centres relative to the canvas centre: ``canvas pixel − (H/2, W/2)`` for an even canvas
(checked against pty-chi's own forward model in the tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fly64_kedro.contracts import Measurements
from fly64_kedro.physics.geometry import canvas_for_positions, positions_in_canvas


@dataclass(frozen=True)
class Problem:
    """One reconstruction problem.

    ``counts`` (n, N, N) float32 photon counts, DC centred; ``probe`` (N, N) complex64 scaled
    so that ``|fftshift(fft2(probe · patch))|²`` is the expected counts; ``ycoords``,
    ``xcoords`` (n,) float64 patch-centre object pixels; ``canvas_origin_yx`` (2,) float64 the
    object pixel of canvas pixel (0, 0); ``canvas_shape`` (H, W), both even.
    """

    counts: np.ndarray
    probe: np.ndarray
    ycoords: np.ndarray
    xcoords: np.ndarray
    canvas_origin_yx: np.ndarray
    canvas_shape: tuple[int, int]

    @classmethod
    def from_measurements(cls, data: Measurements, margin_px: int) -> Problem:
        """The problem on the canvas that covers every patch of ``data`` plus ``margin_px`` on each side."""
        origin, shape = canvas_for_positions(data.ycoords, data.xcoords, data.patch_size, margin_px)
        return cls(data.counts, data.scaled_probe, data.ycoords, data.xcoords, origin, shape)

    @property
    def n_positions(self) -> int:
        return int(self.counts.shape[0])

    def ptychi_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """(y, x) (n,) float64: patch centres relative to the canvas centre, pty-chi's convention."""
        y, x = positions_in_canvas(self.ycoords, self.xcoords, self.canvas_origin_yx)
        return y - self.canvas_shape[0] / 2, x - self.canvas_shape[1] / 2

    def degenerate_reason(self, refine_probe: bool) -> str | None:
        """Why pty-chi cannot reconstruct this scan geometry, or None.

        With probe refinement pty-chi's object/probe ambiguity removal normalises over the
        bounding box of the patch centres; a box of zero height or width (one position, a
        line scan) turns object and probe into NaN without an error. With a fixed probe it is off.
        """
        if not refine_probe:
            return None
        for axis, coords in (("y", self.ycoords), ("x", self.xcoords)):
            span = float(np.ptp(coords))
            if span < 1:
                return (f"the {self.n_positions} position(s) span {span:g} px in {axis}: with refine_probe, pty-chi's "
                        "object/probe ambiguity removal averages over the positions' bounding box and needs ≥ 1 px "
                        "in y and x (it would return NaN)")
        return None
