"""Synthetic scans for the PINN tests, built with the project's own physics (no Kedro)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from fly64_kedro.parameters.training import TrainingParams
from fly64_kedro.physics import forward, ground_truth, scan
from fly64_kedro.physics.geometry import canvas_for_positions

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Run a test on one intra-op thread, then restore the count.

    Small convolutions gain little from a second thread, and on a shared 2-core machine two
    OpenMP threads that wait for each other made these tests 5–30× slower (measured).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@dataclass(frozen=True)
class Scan:
    """Truth, probe, positions and Poisson counts of one simulated scan."""

    obj: np.ndarray
    probe: np.ndarray          # probeGuess, peak 1
    ycoords: np.ndarray
    xcoords: np.ndarray
    expected: np.ndarray       # expected counts (n, N, N)
    counts: np.ndarray         # Poisson counts (n, N, N) float32
    intensity_scale: float

    @property
    def probe_counts(self) -> np.ndarray:
        """Probe in counts units, probeGuess·sqrt(intensity_scale)."""
        return (self.probe * np.sqrt(self.intensity_scale)).astype(np.complex64)

    @property
    def patches(self) -> np.ndarray:
        return forward.extract_patches(self.obj, self.ycoords, self.xcoords, self.probe.shape[0])


def synthetic_scan(patch_size: int = 32, object_size: int = 128, n_positions: int = 120, dose: float = 1e5,
                   seed: int = 0) -> Scan:
    """A Siemens-star object scanned at random whole-pixel positions, Poisson counts at ``dose``."""
    obj = ground_truth.synthesize_object(object_size, 12, 0.95, (0.55, 1.0), 1.0, 0.04, 0.15, 1.5, seed=seed)
    probe = ground_truth.synthesize_probe(patch_size, 0.5, patch_size / 2)
    rng = np.random.default_rng(seed)
    y, x = scan.random_positions(obj.shape, patch_size, n_positions, rng)
    intensity = forward.far_field_intensity(forward.extract_patches(obj, y, x, patch_size) * probe)
    scale = forward.intensity_scale_for_dose(intensity, dose)
    expected = intensity * np.float32(scale)
    return Scan(obj, probe, y, x, expected, forward.poisson_counts(expected, rng), scale)


def training_params(**overrides: object) -> TrainingParams:
    """The base environment's training parameters with ``overrides`` (nested 'network' merged)."""
    values = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_training.yml").read_text())["training"]
    values["network"] = {**values["network"], **overrides.pop("network", {})}  # type: ignore[dict-item]
    values.update(progress_bar=False, **overrides)
    return TrainingParams.model_validate(values)


def truth_on_canvas(obj: np.ndarray, origin_yx: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The true object on a canvas (canvas pixel (i, j) = object pixel (i + oy, j + ox)), 0 outside it."""
    pad = max(shape)
    padded = np.pad(obj, pad)
    top, left = (origin_yx.astype(int) + pad)
    return padded[top:top + shape[0], left:left + shape[1]]


def phase_correlation(reconstruction: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Pearson correlation of phases inside ``mask`` after removing the best global phase offset."""
    rec, ref = reconstruction[mask], truth[mask]
    offset = np.vdot(rec, ref)
    return float(np.corrcoef(np.angle(rec * offset / abs(offset)), np.angle(ref))[0, 1])


def canvas_of(ycoords: np.ndarray, xcoords: np.ndarray, patch_size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The study canvas of a set of positions, no margin."""
    return canvas_for_positions(ycoords, xcoords, patch_size, 0)
