"""ePIE (extended ptychographic iterative engine, pty-chi's PIE family; ``EPIEOptions``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from fly64_kedro.reconstruction.engines import Engine, MinibatchOptions, common_options


class EPIEOptions(MinibatchOptions):
    """pty-chi ePIE settings of the study (``reconstruction.options.epie``)."""

    object_alpha: float = Field(default=0.1, gt=0, le=1)
    """ePIE's α of the object update (pty-chi ``object_options.alpha``)."""

    object_step_size: float = Field(default=1.0, gt=0)
    """Step size of the object update."""

    probe_alpha: float = Field(default=0.1, gt=0, le=1)
    """ePIE's α of the probe update; only with ``refine_probe``."""


def build(options: EPIEOptions, device: Any, dtype: str, seed: int) -> Any:
    from ptychi import api

    built = common_options(api.EPIEOptions, options, device, dtype, seed)
    built.object_options.alpha = options.object_alpha
    built.object_options.step_size = options.object_step_size
    built.probe_options.alpha = options.probe_alpha
    return built


ENGINE = Engine("epie", "ePIE", EPIEOptions, build)
