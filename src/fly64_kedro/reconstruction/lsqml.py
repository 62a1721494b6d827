"""pty-chi LSQML through its public API (``ptychi.api``), in the project's conventions.

The wrapper validates its input before the call (pty-chi runs most bad input silently to
NaN), checks the result after it, turns the known numerical failures into
``NumericalFailure`` (everything else still raises), restores torch's process-wide state
and measures runtime and peak memory. ``ptychi`` is imported on first use: importing it
takes seconds and most Kedro commands never reconstruct.

Conventions (checked against pty-chi's own forward model in the tests): pty-chi takes
intensities with DC at the centre (``fft_shift=True``) and its unnormalised forward model
``|fft2(probe · patch)|²`` predicts them, so the data are photon counts = diffraction² and
the probe is ``probeGuess · sqrt(intensity_scale)``. Its positions are patch centres
relative to the canvas centre: ``canvas pixel − (H/2, W/2)`` for an even canvas.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from fly64_kedro.parameters.reconstruction import LSQMLParams
from fly64_kedro.physics.geometry import canvas_for_positions, positions_in_canvas
from fly64_kedro.reconstruction.failures import NonFiniteResultError, NumericalFailure, is_numerical_failure
from fly64_kedro.reconstruction.runtime import (
    describe_device,
    device_scope,
    peak_memory,
    preserved_torch_state,
    resolve_device,
)
from fly64_kedro.validation import InputDataError, require_complex_2d, require_field

if TYPE_CHECKING:
    import ptychi.api
    import torch

LOSS_DEFINITION = "pty-chi's displayed loss: mean squared error of sqrt(intensity), counts units"


@dataclass(frozen=True)
class LSQMLProblem:
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
    def on_canvas(cls, counts: np.ndarray, probe: np.ndarray, ycoords: np.ndarray, xcoords: np.ndarray,
                  margin_px: int) -> LSQMLProblem:
        """The problem on the canvas that covers every patch plus ``margin_px`` on each side."""
        origin, shape = canvas_for_positions(ycoords, xcoords, probe.shape[0], margin_px)
        return cls(counts, probe, ycoords, xcoords, origin, shape)

    @property
    def n_positions(self) -> int:
        return int(self.counts.shape[0])

    def ptychi_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """(y, x) (n,) float64: patch centres relative to the canvas centre, pty-chi's convention."""
        y, x = positions_in_canvas(self.ycoords, self.xcoords, self.canvas_origin_yx)
        return y - self.canvas_shape[0] / 2, x - self.canvas_shape[1] / 2


def problem_from_view(view: dict[str, Any], dataset: str, patch_size: int, margin_px: int) -> LSQMLProblem:
    """Validate a scan-view payload and express it as an LSQML problem.

    ``view`` holds ``diffraction`` (n, N, N) sqrt(counts), ``ycoords``/``xcoords`` (n,) object
    pixels, ``probeGuess`` (N, N) complex and ``intensity_scale`` (scalar > 0). Anything
    pty-chi would silently turn into NaN (NaN/inf, negative values, a zero probe) or refuse
    late is an ``InputDataError`` naming the dataset and field.
    """
    amplitude = require_field(view, dataset, "diffraction")
    if amplitude.ndim != 3 or amplitude.shape[1:] != (patch_size, patch_size):
        raise InputDataError(dataset, "diffraction", f"shape (n, {patch_size}, {patch_size}) (N = patch_size)",
                             f"shape {amplitude.shape}")
    if not np.issubdtype(amplitude.dtype, np.floating):
        raise InputDataError(dataset, "diffraction", "a real floating-point array (float32)", f"dtype {amplitude.dtype}")
    n_bad = int(np.count_nonzero(~np.isfinite(amplitude)))
    if n_bad:
        raise InputDataError(dataset, "diffraction", "finite values", f"{n_bad} NaN/inf pixels")
    if amplitude.size and amplitude.min() < 0:
        raise InputDataError(dataset, "diffraction", "sqrt(counts) ≥ 0", f"minimum {amplitude.min()}")
    coords = {}
    for name in ("ycoords", "xcoords"):
        values = require_field(view, dataset, name).astype(np.float64)
        if values.shape != (amplitude.shape[0],):
            raise InputDataError(dataset, name, f"shape ({amplitude.shape[0]},) (one per pattern)", f"shape {values.shape}")
        if not np.isfinite(values).all():
            raise InputDataError(dataset, name, "finite coordinates", f"{int((~np.isfinite(values)).sum())} NaN/inf")
        coords[name] = values
    probe = require_complex_2d(view, dataset, "probeGuess")
    if probe.shape != (patch_size, patch_size):
        raise InputDataError(dataset, "probeGuess", f"shape ({patch_size}, {patch_size})", f"shape {probe.shape}")
    if not np.abs(probe).max() > 0:
        raise InputDataError(dataset, "probeGuess", "a non-zero probe", "all zeros")
    scale = require_field(view, dataset, "intensity_scale")
    if scale.size != 1 or not np.isfinite(scale).all() or not float(scale.reshape(())) > 0:
        raise InputDataError(dataset, "intensity_scale", "one finite number > 0", f"{scale!r}")
    if amplitude.size and float(amplitude.max()) ** 2 >= float(np.finfo(np.float32).max):
        raise InputDataError(dataset, "diffraction", "counts = diffraction² finite in float32 (< 3.4e38)",
                             f"maximum amplitude {amplitude.max():.3g}")
    counts = np.square(amplitude, dtype=np.float32)
    scaled_probe = (probe * np.sqrt(float(scale.reshape(())))).astype(np.complex64)
    if counts.shape[0] == 0:
        return LSQMLProblem(counts, scaled_probe, coords["ycoords"], coords["xcoords"], np.zeros(2), (0, 0))
    return LSQMLProblem.on_canvas(counts, scaled_probe, coords["ycoords"], coords["xcoords"], margin_px)


def degenerate_scan_reason(problem: LSQMLProblem, params: LSQMLParams) -> str | None:
    """Why pty-chi cannot reconstruct this scan geometry, or None.

    With probe refinement pty-chi's object/probe ambiguity removal normalises over the
    bounding box of the patch centres; a box of zero height or width (one position, a line
    scan) turns object and probe into NaN without an error. With a fixed probe it is off.
    """
    if not params.refine_probe or problem.n_positions == 0:
        return None
    for axis, coords in (("y", problem.ycoords), ("x", problem.xcoords)):
        span = float(np.ptp(coords))
        if span < 1:
            return (f"the {problem.n_positions} position(s) span {span:g} px in {axis}: with refine_probe, pty-chi's "
                    "object/probe ambiguity removal averages over the positions' bounding box and needs ≥ 1 px "
                    "in y and x (it would return NaN)")
    return None


def lsqml_options(params: LSQMLParams, device: torch.device, seed: int) -> ptychi.api.LSQMLOptions:
    """pty-chi options for one job; the probe is fixed and not rescaled unless ``refine_probe``."""
    from ptychi import api

    options = api.LSQMLOptions()
    solver = options.reconstructor_options
    solver.num_epochs = params.num_epochs
    solver.batch_size = params.batch_size
    solver.batching_mode = api.BatchingModes(params.batching_mode)
    solver.noise_model = api.NoiseModels(params.noise_model)
    solver.gaussian_noise_std = params.gaussian_noise_std
    solver.momentum_acceleration_gain = params.momentum_acceleration_gain
    solver.default_device = api.Devices.GPU if device.type == "cuda" else api.Devices.CPU
    solver.default_dtype = api.Dtypes(params.dtype)
    solver.random_seed = seed
    # the probe already predicts counts (intensity_scale is known): rescaling or renormalising
    # it would only change a known quantity, so both follow refine_probe
    solver.rescale_probe_intensity_in_first_epoch = params.refine_probe
    options.object_options.remove_object_probe_ambiguity.enabled = params.refine_probe
    options.data_options.fft_shift = True
    options.object_options.optimizable = True
    options.object_options.step_size = params.object_step_size
    options.probe_options.optimizable = params.refine_probe
    options.probe_options.step_size = params.probe_step_size
    options.probe_options.optimization_plan.start = params.probe_update_start_epoch
    options.probe_position_options.optimizable = False
    return options


def ptychi_task_inputs(problem: LSQMLProblem) -> dict[str, Any]:
    """Keyword arguments of ``PtychographyTask``: data, flat object, probe, positions."""
    pos_y, pos_x = problem.ptychi_positions()
    return {
        "diffraction_data": problem.counts,
        "object_data": np.ones((1, *problem.canvas_shape), dtype=np.complex64),
        "probe_data": problem.probe[None, None],
        "probe_position_y_px": pos_y,
        "probe_position_x_px": pos_x,
    }


@dataclass(frozen=True)
class LSQMLResult:
    """A finished reconstruction.

    ``object`` (H, W) complex64 on the problem's canvas; ``probe`` (N, N) complex64 in the
    problem's (counts) scaling; ``loss_history`` (epochs,) float64, see ``LOSS_DEFINITION``;
    ``build_s``/``run_s`` seconds for building the task and running the epochs;
    ``memory`` from ``runtime.peak_memory``; ``device`` the device that ran it.
    """

    object: np.ndarray
    probe: np.ndarray
    loss_history: np.ndarray
    build_s: float
    run_s: float
    memory: dict[str, Any]
    device: str

    @property
    def epochs_completed(self) -> int:
        return int(self.loss_history.size)


def _run_epochs(task: Any, params: LSQMLParams, losses: list[float], label: str) -> None:
    """Epoch by epoch, so a non-finite loss stops the job at once; a progress bar for long jobs."""
    with tqdm(total=params.num_epochs, desc=label, unit="epoch", leave=False,
              delay=params.progress_bar_delay_s, disable=None) as bar:  # None: only on a terminal
        for epoch in range(params.num_epochs):
            task.run(n_epochs=1)
            loss = float(task.reconstructor.loss_tracker.table["loss"].iloc[-1])
            losses.append(loss)
            bar.update()
            if not math.isfinite(loss):
                raise NonFiniteResultError(f"the loss became {loss} in epoch {epoch}")


def _require_finite(array: np.ndarray, name: str) -> None:
    n_bad = int(np.count_nonzero(~np.isfinite(array)))
    if n_bad:
        raise NonFiniteResultError(f"the reconstructed {name} has {n_bad} NaN/inf pixel(s)")


def run_lsqml(problem: LSQMLProblem, params: LSQMLParams, seed: int, label: str = "LSQML") -> LSQMLResult:
    """Reconstruct ``problem`` from a flat object with pty-chi's LSQML.

    Raises ``NumericalFailure`` for the known numerical failures (``failures.is_numerical_failure``),
    ``runtime.DeviceUnavailableError`` for a device this machine lacks, and anything else as is.
    torch's default device, dtype and global random streams are the same afterwards.
    """
    from ptychi.api.task import PtychographyTask

    device = resolve_device(params.device)
    options = lsqml_options(params, device, seed)
    losses: list[float] = []
    memory: dict[str, Any] = {}
    start = time.perf_counter()
    try:
        with preserved_torch_state(), device_scope(device), peak_memory(device) as memory, \
                warnings.catch_warnings():
            # emitted by every task build; pty-chi's own scalar conversion, harmless
            warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")
            task = PtychographyTask(options, **ptychi_task_inputs(problem))
            with task:  # its exit frees the solver's tensors
                built = time.perf_counter()
                _run_epochs(task, params, losses, label)
                finished = time.perf_counter()
                obj = np.asarray(task.get_data_to_cpu("object", as_numpy=True))[0].astype(np.complex64)
                probe = np.asarray(task.get_data_to_cpu("probe", as_numpy=True))[0, 0].astype(np.complex64)
            _require_finite(obj, "object")
            _require_finite(probe, "probe")
    except Exception as error:
        if is_numerical_failure(error):
            raise NumericalFailure(error, np.asarray(losses, dtype=np.float64), time.perf_counter() - start,
                                   memory, describe_device(device)) from error
        raise
    return LSQMLResult(obj, probe, np.asarray(losses, dtype=np.float64), built - start, finished - built,
                       memory, describe_device(device))
