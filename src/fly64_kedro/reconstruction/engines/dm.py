"""DM (difference map; pty-chi ``DMOptions``): every position updated at once in each epoch, no minibatches."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from fly64_kedro.reconstruction.engines import Engine, EngineOptions, common_options


class DMOptions(EngineOptions):
    """pty-chi difference-map settings of the study (``reconstruction.options.dm``)."""

    exit_wave_update_relaxation: float = Field(default=1.0, gt=0, le=1)
    """Relaxation of the exit-wave update (1 = the classic difference map)."""

    chunk_length: int = Field(default=100, gt=0)
    """Positions processed at a time (memory only; no effect on convergence)."""

    object_amplitude_clamp: float = Field(default=1000.0, gt=0)
    """Upper limit of the object amplitude after each update."""


def build(options: DMOptions, device: Any, dtype: str, seed: int) -> Any:
    from ptychi import api

    built = common_options(api.DMOptions, options, device, dtype, seed)
    built.reconstructor_options.exit_wave_update_relaxation = options.exit_wave_update_relaxation
    built.reconstructor_options.chunk_length = options.chunk_length
    built.object_options.amplitude_clamp_limit = options.object_amplitude_clamp
    built.reconstructor_options.displayed_loss_function = None  # DM records its own error, below
    return built


ENGINE = Engine("dm", "DM", DMOptions, build,
                loss_definition="pty-chi's DM error: norm of the exit-wave update over all positions, sqrt-counts units")
