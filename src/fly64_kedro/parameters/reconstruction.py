"""pty-chi LSQML settings of the reconstruction jobs (``params:lsqml``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fly64_kedro.parameters.study import _Strict


class LSQMLParams(_Strict):
    """Settings shared by every LSQML job; the quick default and ``paper`` differ only in conf."""

    num_epochs: int = Field(gt=0)
    """Epochs per job (the original study: 100)."""

    batch_size: int = Field(gt=0)
    """Diffraction patterns per minibatch."""

    batching_mode: Literal["random", "compact", "uniform"] = "random"
    """pty-chi minibatching: random, compact (spatially clustered; use momentum) or uniform (spread out)."""

    noise_model: Literal["poisson", "gaussian"] = "poisson"
    """LSQML likelihood; the data are photon counts, so Poisson is the default."""

    gaussian_noise_std: float = Field(default=0.5, gt=0)
    """Noise std of the Gaussian model (sqrt-count units); unused with Poisson."""

    object_step_size: float = Field(default=1.0, gt=0)
    """Multiplier of LSQML's optimal object step."""

    momentum_acceleration_gain: float = Field(default=0.0, ge=0)
    """LSQML momentum gain (0 = off; about 0.5 with compact batching)."""

    refine_probe: bool = False
    """False: the known probe stays fixed (and is not rescaled); True: LSQML refines it."""

    probe_step_size: float = Field(default=1.0, gt=0)
    """Multiplier of LSQML's optimal probe step; only with ``refine_probe``."""

    probe_update_start_epoch: int = Field(default=0, ge=0)
    """First epoch that updates the probe; only with ``refine_probe``."""

    canvas_margin_px: int = Field(ge=1)
    """Unscanned border of the object canvas around the outermost patches (px); pty-chi needs ≥ 1."""

    device: str = Field(pattern=r"^(cpu|cuda(:\d+)?)$")
    """Torch device of the solver: 'cpu', 'cuda' (current GPU) or 'cuda:N'."""

    dtype: Literal["float32", "float64"] = "float32"
    """Real precision of the solver (complex64 / complex128 objects)."""

    progress_bar_delay_s: float = Field(default=5.0, ge=0)
    """An epoch progress bar appears once a job has run this long (on a terminal)."""
