"""Iterative reconstruction with pty-chi (LSQML): a plain-Python wrapper, usable without Kedro."""

from fly64_kedro.reconstruction.failures import NonFiniteResultError, NumericalFailure, is_numerical_failure
from fly64_kedro.reconstruction.lsqml import (
    LOSS_DEFINITION,
    LSQMLProblem,
    LSQMLResult,
    degenerate_scan_reason,
    lsqml_options,
    problem_from_view,
    ptychi_task_inputs,
    run_lsqml,
)
from fly64_kedro.reconstruction.runtime import DeviceUnavailableError, preserved_torch_state, resolve_device

__all__ = [
    "LOSS_DEFINITION",
    "DeviceUnavailableError",
    "LSQMLProblem",
    "LSQMLResult",
    "NonFiniteResultError",
    "NumericalFailure",
    "degenerate_scan_reason",
    "is_numerical_failure",
    "lsqml_options",
    "preserved_torch_state",
    "problem_from_view",
    "ptychi_task_inputs",
    "resolve_device",
    "run_lsqml",
]
