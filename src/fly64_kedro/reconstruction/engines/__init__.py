"""pty-chi's reconstruction engines as arms of the study: each is an ``Engine`` (name, options model, options builder).

An engine module holds its options model (a pydantic model mirroring pty-chi's own options
class: the fields the study sets, constrained and documented) and a function that turns it
into pty-chi's options; ``runner.run_engine`` does everything else, the same for every
engine. To add an engine: write its module, list it in ``ENGINES`` below, and give it an
entry under ``reconstruction.options`` in conf.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class EngineOptions(BaseModel):
    """What every engine's options hold: epochs and what is refined (unknown fields refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    num_epochs: int = Field(gt=0)
    """Epochs per job."""

    refine_probe: bool = False
    """False: the known probe stays fixed (and is not rescaled); True: the engine refines it."""

    probe_update_start_epoch: int = Field(default=0, ge=0)
    """First epoch that updates the probe; only with ``refine_probe``."""


class MinibatchOptions(EngineOptions):
    """Options of an engine that updates from minibatches of patterns."""

    batch_size: int = Field(gt=0)
    """Diffraction patterns per minibatch."""

    batching_mode: Literal["random", "compact", "uniform"] = "random"
    """pty-chi minibatching: random, compact (spatially clustered) or uniform (spread out)."""


AMPLITUDE_MSE = "pty-chi's displayed loss: mean squared error of sqrt(intensity), counts units"
"""What pty-chi's loss tracker records for the minibatch engines (LSQML, ePIE)."""


@dataclass(frozen=True)
class Engine:
    """One pty-chi engine: its arm name, a title for tables and figures, its options model and builder,
    and what its per-epoch loss (pty-chi's loss tracker) measures."""

    name: str
    title: str
    options_model: type[EngineOptions]
    build: Callable[[Any, Any, str, int], Any]
    """(options, torch device, dtype name, seed) → the pty-chi options object."""
    loss_definition: str = AMPLITUDE_MSE

    def ptychi_options(self, options: EngineOptions, device: Any, dtype: str, seed: int) -> Any:
        return self.build(options, device, dtype, seed)


def common_options(options_class: Any, options: EngineOptions, device: Any, dtype: str, seed: int) -> Any:
    """pty-chi options every engine shares: flat-object start with a known probe, fixed positions, the run's device."""
    from ptychi import api

    built = options_class()
    solver = built.reconstructor_options
    solver.num_epochs = options.num_epochs
    if isinstance(options, MinibatchOptions):
        solver.batch_size = options.batch_size
        solver.batching_mode = api.BatchingModes(options.batching_mode)
    solver.default_device = api.Devices.GPU if device.type == "cuda" else api.Devices.CPU
    solver.default_dtype = api.Dtypes(dtype)
    solver.random_seed = seed
    # the probe already predicts counts (intensity_scale is known): renormalising it would only
    # change a known quantity, so that follows refine_probe
    built.object_options.remove_object_probe_ambiguity.enabled = options.refine_probe
    built.data_options.fft_shift = True
    built.object_options.optimizable = True
    built.probe_options.optimizable = options.refine_probe
    built.probe_options.optimization_plan.start = options.probe_update_start_epoch
    built.probe_position_options.optimizable = False
    return built


def _registry() -> dict[str, Engine]:
    from fly64_kedro.reconstruction.engines import dm, epie, lsqml

    return {engine.name: engine for engine in (lsqml.ENGINE, epie.ENGINE, dm.ENGINE)}


ENGINES: dict[str, Engine] = _registry()
"""Every engine the study can run, by arm name."""
