"""Field checks shared by the contracts: each failure names the dataset, the field, what was expected and found."""

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


def require_finite(array: np.ndarray, dataset: str, field: str, what: str = "finite values") -> np.ndarray:
    n_bad = int(np.count_nonzero(~np.isfinite(array)))
    if n_bad:
        raise InputDataError(dataset, field, what, f"{n_bad} NaN/inf value(s)")
    return array


def require_complex_2d(payload: dict[str, Any], dataset: str, field: str) -> np.ndarray:
    """A finite complex 2-D array, as complex64."""
    array = require_field(payload, dataset, field)
    if not np.iscomplexobj(array):
        raise InputDataError(dataset, field, "a complex array (complex64)", f"dtype {array.dtype}")
    if array.ndim != 2:
        raise InputDataError(dataset, field, "a 2-D array", f"shape {array.shape}")
    return require_finite(array, dataset, field).astype(np.complex64)


def require_probe(payload: dict[str, Any], dataset: str, field: str = "probeGuess") -> np.ndarray:
    """A finite, square, non-zero complex probe (N, N) complex64."""
    probe = require_complex_2d(payload, dataset, field)
    if probe.shape[0] != probe.shape[1]:
        raise InputDataError(dataset, field, "a square probe (N, N)", f"shape {probe.shape}")
    if not np.abs(probe).max(initial=0.0) > 0:
        raise InputDataError(dataset, field, "a non-zero probe", "all zeros")
    return probe


def require_positions(payload: dict[str, Any], dataset: str, n_positions: int | None = None) -> tuple[np.ndarray, ...]:
    """(ycoords, xcoords, scan_index): 1-D, of equal length (``n_positions`` when given), finite coordinates."""
    arrays = []
    for name in ("ycoords", "xcoords"):
        values = require_field(payload, dataset, name)
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.number):
            raise InputDataError(dataset, name, "a 1-D numeric array of positions (px)",
                                 f"shape {values.shape}, dtype {values.dtype}")
        arrays.append(require_finite(values.astype(np.float64), dataset, name, "finite coordinates (px)"))
    index = require_field(payload, dataset, "scan_index")
    expected = arrays[0].size if n_positions is None else n_positions
    for name, values in (("ycoords", arrays[0]), ("xcoords", arrays[1]), ("scan_index", index)):
        if values.shape != (expected,):
            raise InputDataError(dataset, name, f"shape ({expected},): one per pattern", f"shape {values.shape}")
    return arrays[0], arrays[1], index.astype(np.int64)
