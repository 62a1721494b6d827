"""The shell every pty-chi engine runs in: one task, an epoch loop, failures classified, torch fenced, time and memory.

An engine (``reconstruction.engines``) only says how to build pty-chi's options; this module
builds the ``PtychographyTask`` from a flat object, the known probe and the positions, runs
it epoch by epoch (a non-finite loss stops it at once), checks the result is finite, turns
the known numerical failures into ``NumericalFailure`` (everything else still raises),
restores torch's process-wide state and measures runtime and peak memory. ``ptychi`` is
imported on first use: importing it takes seconds and most Kedro commands never reconstruct.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from fly64_kedro.reconstruction.engines import Engine
from fly64_kedro.reconstruction.failures import (
    NonFiniteResultError,
    NumericalFailure,
    is_numerical_failure,
)
from fly64_kedro.reconstruction.problem import Problem
from fly64_kedro.runtime import (
    describe_device,
    device_scope,
    peak_memory,
    preserved_torch_state,
    resolve_device,
)


@dataclass(frozen=True)
class RunSettings:
    """What every engine's run shares: device, precision, progress display."""

    device: str
    dtype: str
    progress_bar_delay_s: float


@dataclass(frozen=True)
class EngineResult:
    """A finished reconstruction.

    ``object`` (H, W) complex64 on the problem's canvas; ``probe`` (N, N) complex64 in the
    problem's (counts) scaling; ``loss_history`` (epochs,) float64, the engine's ``loss_definition``;
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


def task_inputs(problem: Problem) -> dict[str, Any]:
    """Keyword arguments of ``PtychographyTask``: data, flat object, probe, positions."""
    pos_y, pos_x = problem.ptychi_positions()
    return {
        "diffraction_data": problem.counts,
        "object_data": np.ones((1, *problem.canvas_shape), dtype=np.complex64),
        "probe_data": problem.probe[None, None],
        "probe_position_y_px": pos_y,
        "probe_position_x_px": pos_x,
    }


def _run_epochs(task: Any, num_epochs: int, losses: list[float], label: str, delay_s: float) -> None:
    """Epoch by epoch, so a non-finite loss stops the job at once; a progress bar for long jobs."""
    with tqdm(total=num_epochs, desc=label, unit="epoch", leave=False, delay=delay_s,
              disable=None) as bar:  # None: only on a terminal
        for epoch in range(num_epochs):
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


def run_engine(engine: Engine, options: Any, problem: Problem, settings: RunSettings, seed: int,
               label: str) -> EngineResult:
    """Reconstruct ``problem`` from a flat object with ``engine`` and its ``options`` model.

    Raises ``NumericalFailure`` for the known numerical failures (``failures.is_numerical_failure``),
    ``runtime.DeviceUnavailableError`` for a device this machine lacks, and anything else as is.
    torch's default device, dtype and global random streams are the same afterwards.
    """
    from ptychi.api.task import PtychographyTask

    device = resolve_device(settings.device)
    ptychi_options = engine.ptychi_options(options, device, settings.dtype, seed)
    losses: list[float] = []
    memory: dict[str, Any] = {}
    start = time.perf_counter()
    try:
        with preserved_torch_state(), device_scope(device), peak_memory(device) as memory, \
                warnings.catch_warnings():
            # emitted by every task build; pty-chi's own scalar conversion, harmless
            warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")
            task = PtychographyTask(ptychi_options, **task_inputs(problem))
            with task:  # its exit frees the solver's tensors
                built = time.perf_counter()
                _run_epochs(task, options.num_epochs, losses, label, settings.progress_bar_delay_s)
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
    return EngineResult(obj, probe, np.asarray(losses, dtype=np.float64), built - start, finished - built,
                        memory, describe_device(device))
