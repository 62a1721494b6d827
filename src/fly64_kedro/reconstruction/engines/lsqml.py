"""LSQML (least-squares maximum likelihood; pty-chi ``LSQMLOptions``): the study's iterative baseline."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from fly64_kedro.reconstruction.engines import Engine, MinibatchOptions, common_options


class LSQMLOptions(MinibatchOptions):
    """pty-chi LSQML settings of the study (``reconstruction.options.lsqml``)."""

    noise_model: Literal["poisson", "gaussian"] = "poisson"
    """Likelihood; the data are photon counts, so Poisson is the default."""

    gaussian_noise_std: float = Field(default=0.5, gt=0)
    """Noise std of the Gaussian model (sqrt-count units); unused with Poisson."""

    object_step_size: float = Field(default=1.0, gt=0)
    """Multiplier of LSQML's optimal object step."""

    momentum_acceleration_gain: float = Field(default=0.0, ge=0)
    """Momentum gain (0 = off; about 0.5 with compact batching)."""

    probe_step_size: float = Field(default=1.0, gt=0)
    """Multiplier of LSQML's optimal probe step; only with ``refine_probe``."""


def build(options: LSQMLOptions, device: Any, dtype: str, seed: int) -> Any:
    from ptychi import api

    built = common_options(api.LSQMLOptions, options, device, dtype, seed)
    solver = built.reconstructor_options
    solver.noise_model = api.NoiseModels(options.noise_model)
    solver.gaussian_noise_std = options.gaussian_noise_std
    solver.momentum_acceleration_gain = options.momentum_acceleration_gain
    solver.rescale_probe_intensity_in_first_epoch = options.refine_probe
    built.object_options.step_size = options.object_step_size
    built.probe_options.step_size = options.probe_step_size
    return built


ENGINE = Engine("lsqml", "LSQML", LSQMLOptions, build)
