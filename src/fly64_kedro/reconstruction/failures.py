"""Which exceptions of a solver run are known numerical failures (recorded) and which are bugs (raised)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class NonFiniteResultError(ArithmeticError):
    """The solver returned (or reached) NaN/inf values without raising."""


class NumericalFailure(RuntimeError):
    """A known numerical failure of a reconstruction; the job is recorded as failed.

    ``cause`` is "<ExceptionType>: <message>" of the original error; ``loss_history`` the
    losses of the epochs that ran (the last one may be the non-finite loss that stopped the
    job); ``runtime_s`` the seconds until the failure; ``memory`` as ``runtime.peak_memory``;
    ``device`` the device that ran it.
    """

    def __init__(self, cause: BaseException, loss_history: np.ndarray, runtime_s: float,
                 memory: dict[str, Any], device: str) -> None:
        self.cause = f"{type(cause).__name__}: {cause}"
        self.loss_history = loss_history
        self.runtime_s = runtime_s
        self.memory = memory
        self.device = device
        super().__init__(f"{self.cause} (after {loss_history.size} epoch(s))")


# Numerical failures of LSQML (pty-chi 2.2 turns degenerate scans and bad data into NaN without an error; the
# original study stopped with a "singular matrix" at n = 1): linear-algebra errors, floating-point traps,
# non-finite results, and ``math.sqrt`` of a negative intensity sum in the first-epoch rescale.
_NUMERICAL_TYPES: tuple[type[BaseException], ...] = (
    torch.linalg.LinAlgError,
    FloatingPointError,
    ZeroDivisionError,
    NonFiniteResultError,
)
_NUMERICAL_MESSAGES: tuple[tuple[type[BaseException], str], ...] = (
    (RuntimeError, "singular"),
    (ValueError, "math domain error"),
)


def is_numerical_failure(error: BaseException) -> bool:
    """True for the known numerical failures; anything else (shape errors, missing keys…) is a bug."""
    if isinstance(error, _NUMERICAL_TYPES):
        return True
    message = str(error).lower()
    return any(isinstance(error, kind) and text in message for kind, text in _NUMERICAL_MESSAGES)
