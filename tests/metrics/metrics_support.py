"""Helpers shared by the metrics tests: the project's own parameters and canvases of the fly64 object."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from fly64_kedro.parameters.comparison import ComparisonParams
from fly64_kedro.physics.geometry import canvas_for_positions

CONF = Path(__file__).resolve().parents[2] / "conf"
N = 64


def base_parameters(name: str) -> dict:
    """Raw ``conf/base/parameters_<name>.yml``."""
    return yaml.safe_load((CONF / "base" / f"parameters_{name}.yml").read_text())


def comparison_with(**alignment: object) -> ComparisonParams:
    """The base comparison parameters with some alignment fields replaced."""
    raw = base_parameters("comparison")["comparison"]
    return ComparisonParams.model_validate({**raw, "alignment": {**raw["alignment"], **alignment}})


def canvas_of(image: np.ndarray, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(canvas, origin): ``image`` cut to the canvas of the positions (no margin, inside the object)."""
    origin, (height, width) = canvas_for_positions(y, x, N, 0)
    oy, ox = int(origin[0]), int(origin[1])
    return image[oy:oy + height, ox:ox + width], origin
