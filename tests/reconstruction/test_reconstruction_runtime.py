"""Process-level behaviour of a solver call: torch's global state, device, memory, failure classes."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np
import pytest
import torch
from reconstruction_support import (
    SETTINGS,
    dense_scan,
    options,
    overflow_factor,
    problem,
)

from fly64_kedro.reconstruction import (
    ENGINES,
    NonFiniteResultError,
    NumericalFailure,
    Problem,
    RunSettings,
    is_numerical_failure,
    run_engine,
)
from fly64_kedro.runtime import DeviceUnavailableError, peak_memory, resolve_device

FLOAT64 = RunSettings(device="cpu", dtype="float64", progress_bar_delay_s=SETTINGS.progress_bar_delay_s)


def _device_override() -> torch.device | None:
    context = getattr(torch._GLOBAL_DEVICE_CONTEXT, "device_context", None)  # torch keeps no public accessor
    return None if context is None else context.device


def _global_streams() -> tuple[float, float, float]:
    """One draw from each global generator (consumes them; compare after restoring a state)."""
    return float(torch.rand(1)), float(np.random.random()), random.random()


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # pty-chi, by design of the test
@pytest.mark.parametrize("fail", [False, True])
def test_torch_defaults_and_global_streams_are_restored(fail: bool) -> None:
    """A float64 task (pty-chi sets the process-wide dtype, device and seeds) leaves nothing behind."""
    job = problem(dense_scan()[0])
    if fail:  # the same guarantees when the job ends in a numerical failure
        factor = overflow_factor(job.counts)
        job = Problem(job.counts * factor, job.probe * np.sqrt(factor), job.ycoords, job.xcoords,
                      job.canvas_origin_yx, job.canvas_shape)
    torch.manual_seed(11)
    np.random.seed(11)
    random.seed(11)
    states = torch.random.get_rng_state(), np.random.get_state(), random.getstate()
    expected = _global_streams()
    torch.random.set_rng_state(states[0])
    np.random.set_state(states[1])
    random.setstate(states[2])
    assert torch.get_default_dtype() == torch.float32 and _device_override() is None
    try:
        run_engine(ENGINES["lsqml"], options("lsqml", num_epochs=1), job, FLOAT64, seed=5, label="test")
    except NumericalFailure:
        assert fail
    assert torch.get_default_dtype() == torch.float32
    assert _device_override() is None  # not even an explicit 'cpu' context (it slows every torch call)
    assert torch.zeros(1).dtype == torch.float32
    assert _global_streams() == expected


def test_float64_result_is_returned_as_complex64() -> None:
    result = run_engine(ENGINES["lsqml"], options("lsqml", num_epochs=1), problem(dense_scan()[0]), FLOAT64, seed=5,
                        label="test")
    assert result.object.dtype == np.complex64


def test_device_is_resolved_and_a_missing_gpu_is_a_clear_error() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
        with pytest.raises(DeviceUnavailableError, match="only"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(DeviceUnavailableError, match="no CUDA device"):
            resolve_device("cuda:0")


def test_peak_memory_sees_an_allocation_inside_the_block() -> None:
    with peak_memory(torch.device("cpu")) as measured:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        del block
    assert measured["peak_gpu_mb"] is None
    if measured["peak_rss_method"].startswith("VmHWM"):
        assert measured["peak_rss_mb"] - measured["rss_at_start_mb"] >= 60


def _raised(action: Callable[[], object]) -> BaseException:
    with pytest.raises(Exception) as caught:  # whatever the action raises is the result
        action()
    return caught.value


def test_known_numerical_failures_are_told_apart_from_bugs() -> None:
    singular = _raised(lambda: torch.linalg.solve(torch.zeros(2, 2), torch.ones(2)))
    domain = _raised(lambda: math.sqrt(-1.0))
    shapes = _raised(lambda: torch.ones(2, 3) @ torch.ones(2, 3))
    missing = _raised(lambda: {}["diffraction"])
    assert is_numerical_failure(singular) and is_numerical_failure(domain)
    assert is_numerical_failure(NonFiniteResultError("the loss became nan in epoch 0"))
    assert not is_numerical_failure(shapes) and not is_numerical_failure(missing)
    assert not is_numerical_failure(ValueError("`probe_data` must have shape (n_opr_modes, ...)"))
