"""Iterative reconstruction with pty-chi's engines: plain Python, usable without Kedro.

* ``problem``: measurements in pty-chi's conventions (counts, scaled probe, positions, canvas);
* ``engines``: the engines (LSQML, ePIE, DM), each an options model and an options builder;
* ``runner``: the shell every engine runs in (task, epochs, failures, torch state, time, memory);
* ``failures``: which errors are known numerical failures.
"""

from fly64_kedro.reconstruction.engines import ENGINES, Engine
from fly64_kedro.reconstruction.failures import (
           NonFiniteResultError,
           NumericalFailure,
           is_numerical_failure,
)
from fly64_kedro.reconstruction.problem import Problem
from fly64_kedro.reconstruction.runner import (
           EngineResult,
           RunSettings,
           run_engine,
           task_inputs,
)

__all__ = ["ENGINES", "Engine", "EngineResult", "NonFiniteResultError", "NumericalFailure",
           "Problem", "RunSettings", "is_numerical_failure", "run_engine", "task_inputs"]
