"""Validation of ground-truth and measurement payloads: clear errors, before any work."""

from __future__ import annotations

from typing import Any

import numpy as np


class InputDataError(ValueError):
    """Bad input data: names the dataset, the field, what was expected and what was found."""

    def __init__(self, dataset: str, field: str, expected: str, found: Any) -> None:
        self.dataset, self.field = dataset, field
        super().__init__(f"dataset '{dataset}', field '{field}': expected {expected}; found {found}")


def require_field(payload: dict[str, Any], dataset: str, field: str) -> np.ndarray:
    """``payload[field]`` as an array, or an InputDataError naming what is there."""
    if field not in payload:
        present = sorted(key for key in payload if not key.startswith("_"))
        raise InputDataError(dataset, field, "a present array", f"missing (keys: {present})")
    return np.asarray(payload[field])


def require_complex_2d(payload: dict[str, Any], dataset: str, field: str) -> np.ndarray:
    """A finite complex 2-D array."""
    array = require_field(payload, dataset, field)
    if not np.iscomplexobj(array):
        raise InputDataError(dataset, field, "a complex array (complex64)", f"dtype {array.dtype}")
    if array.ndim != 2:
        raise InputDataError(dataset, field, "a 2-D array", f"shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputDataError(dataset, field, "finite values", f"{int((~np.isfinite(array)).sum())} NaN/inf pixels")
    return array


def validate_ground_truth(payload: dict[str, Any], patch_size: int, dataset: str = "ground_truth") -> tuple[np.ndarray, np.ndarray]:
    """(object, probe) of a ground-truth NPZ, checked against the study's N.

    The probe must be square of side N and not zero; the object must be at least 2N on each
    side: scan positions keep N/2 from its edges, so that leaves a scan range of at least N
    px along each axis, room for two splits and for views whose positions are up to N apart.
    """
    obj = require_complex_2d(payload, dataset, "objectGuess")
    probe = require_complex_2d(payload, dataset, "probeGuess")
    if probe.shape != (patch_size, patch_size):
        raise InputDataError(dataset, "probeGuess", f"shape ({patch_size}, {patch_size}) (patch_size N)", f"shape {probe.shape}")
    if not np.abs(probe).max() > 0:
        raise InputDataError(dataset, "probeGuess", "a non-zero probe", "all zeros")
    if min(obj.shape) < 2 * patch_size:
        raise InputDataError(
            dataset, "objectGuess",
            f"both sides at least 2N = {2 * patch_size} px (positions keep N/2 = {patch_size // 2} px from the "
            f"edges, leaving a scan range of at least N = {patch_size} px per axis)", f"shape {obj.shape}",
        )
    return obj.astype(np.complex64), probe.astype(np.complex64)
