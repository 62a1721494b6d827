"""Process-level concerns of a solver call: device choice, torch's global state, peak memory."""

from __future__ import annotations

import contextlib
import random
import resource
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

_PROC_STATUS = Path("/proc/self/status")
_PROC_CLEAR_REFS = Path("/proc/self/clear_refs")


class DeviceUnavailableError(ValueError):
    """The requested torch device does not exist on this machine (a configuration error)."""


def resolve_device(spec: str) -> torch.device:
    """``'cpu'``, ``'cuda'`` or ``'cuda:N'`` as a concrete device, or a DeviceUnavailableError."""
    device = torch.device(spec)
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type != "cuda":
        raise DeviceUnavailableError(f"device '{spec}': expected 'cpu', 'cuda' or 'cuda:N'")
    if not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"device '{spec}' was requested but torch finds no CUDA device on this machine "
            f"(torch {torch.__version__}); set the device parameter to 'cpu'"
        )
    index = torch.cuda.current_device() if device.index is None else device.index
    if index >= torch.cuda.device_count():
        raise DeviceUnavailableError(
            f"device '{spec}' was requested but only {torch.cuda.device_count()} CUDA device(s) exist"
        )
    return torch.device("cuda", index)


def describe_device(device: torch.device) -> str:
    """Human-readable device, e.g. 'cpu (2 threads)' or 'cuda:0 (NVIDIA H100 80GB HBM3)'."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def device_scope(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Make ``device`` the current CUDA device (pty-chi allocates on the *current* GPU)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _default_device_override() -> torch.device | None:
    """The device set by ``torch.set_default_device`` in this thread, None when never set."""
    context = getattr(torch._GLOBAL_DEVICE_CONTEXT, "device_context", None)  # torch keeps no public accessor
    return None if context is None else context.device


@contextlib.contextmanager
def preserved_torch_state() -> Iterator[None]:
    """Undo the process-wide changes a pty-chi task makes, however the block ends.

    Building a ``PtychographyTask`` calls ``torch.set_default_device`` and
    ``torch.set_default_dtype`` for the whole process and seeds torch's, numpy's and
    Python's global random generators; afterwards this restores all of them, so other torch
    code in the same process (e.g. training) keeps float32 and its own device and streams.
    """
    dtype = torch.get_default_dtype()
    device = _default_device_override()
    torch_rng = torch.random.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    numpy_rng = np.random.get_state()
    python_rng = random.getstate()
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)
        torch.set_default_device(device)
        torch.random.set_rng_state(torch_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        np.random.set_state(numpy_rng)
        random.setstate(python_rng)


def _status_kib(field: str) -> float | None:
    """A ``kB`` field of /proc/self/status (Linux), None elsewhere."""
    try:
        for line in _PROC_STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def _reset_rss_high_water_mark() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux ≥ 4.0); False if impossible."""
    try:
        _PROC_CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


@contextlib.contextmanager
def peak_memory(device: torch.device) -> Iterator[dict[str, Any]]:
    """Measure the peak memory of the block; the yielded dict is filled when the block ends.

    Keys: ``rss_at_start_mb`` — resident set when the block starts (None off Linux);
    ``peak_rss_mb`` — the process's resident-set high-water mark during the block
    (Linux: reset at the start through /proc/self/clear_refs; elsewhere the lifetime peak,
    said in ``peak_rss_method``); ``peak_gpu_mb`` — torch's peak allocated CUDA memory
    during the block, None on CPU. Memory is per process: jobs that run concurrently in
    threads of one process share one number.
    """
    rss_kib = _status_kib("VmRSS")
    measured: dict[str, Any] = {"rss_at_start_mb": None if rss_kib is None else rss_kib / 1024}
    windowed = _reset_rss_high_water_mark()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        yield measured
    finally:
        peak_kib = _status_kib("VmHWM") if windowed else None
        if peak_kib is not None:
            measured["peak_rss_mb"] = peak_kib / 1024
            measured["peak_rss_method"] = "VmHWM reset at job start (/proc/self/clear_refs)"
        else:
            scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
            measured["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
            measured["peak_rss_method"] = "ru_maxrss (peak over the process lifetime)"
        measured["peak_gpu_mb"] = (torch.cuda.max_memory_allocated(device) / 2**20
                                   if device.type == "cuda" else None)
