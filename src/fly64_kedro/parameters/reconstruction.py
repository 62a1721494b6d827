"""Settings of the iterative reconstruction jobs (``params:reconstruction``): which pty-chi engines, and how."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from fly64_kedro.parameters.study import _Strict
from fly64_kedro.reconstruction.engines import ENGINES


def _require_known(names: Any) -> None:
    unknown = sorted(set(names) - set(ENGINES))
    if unknown:
        raise ValueError(f"unknown engine(s) {unknown}; known: {sorted(ENGINES)}")


def _engine_options(model: type[BaseModel], engine: str, values: Any) -> BaseModel:
    """``values`` as ``engine``'s options model; a bad entry names the engine and the field."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, (engine, *error['loc'])))}: {error['msg']}"
                    + ("" if error["type"] == "missing" else f" (found {error['input']!r})") for error in exc.errors()]
        raise ValueError("; ".join(problems)) from None


class ReconstructionParams(_Strict):
    """The pty-chi engines that reconstruct every cell, their shared run settings and each engine's options."""

    engines: list[str] = Field(min_length=1)
    """Engines that run, each an arm of the study table (known: lsqml, epie, dm); 'all': every one, in
    registry order (``kedro run --params reconstruction.engines=all``)."""

    options: dict[str, Any]
    """Engine name → its options (``reconstruction.engines.<name>``'s model); every listed engine needs an entry."""

    canvas_margin_px: int = Field(ge=1)
    """Unscanned border of the object canvas around the outermost patches (px); pty-chi needs ≥ 1."""

    device: str = Field(pattern=r"^(cpu|cuda(:\d+)?)$")
    """Torch device of the solver: 'cpu', 'cuda' (current GPU) or 'cuda:N'."""

    dtype: Literal["float32", "float64"] = "float32"
    """Real precision of the solver (complex64 / complex128 objects)."""

    progress_bar_delay_s: float = Field(default=5.0, ge=0)
    """An epoch progress bar appears once a job has run this long (on a terminal)."""

    @field_validator("engines", mode="before")
    @classmethod
    def _all_engines(cls, engines: Any) -> Any:
        return list(ENGINES) if engines == "all" else engines

    @field_validator("engines")
    @classmethod
    def _known_distinct_engines(cls, engines: list[str]) -> list[str]:
        _require_known(engines)
        if len(set(engines)) != len(engines):
            raise ValueError(f"engines must be distinct; found {engines}")
        return engines

    @field_validator("options")
    @classmethod
    def _options_per_engine(cls, options: dict[str, Any]) -> dict[str, Any]:
        _require_known(options)
        return {name: _engine_options(ENGINES[name].options_model, name, values) for name, values in options.items()}

    @model_validator(mode="after")
    def _listed_engines_have_options(self) -> ReconstructionParams:
        missing = [name for name in self.engines if name not in self.options]
        if missing:
            raise ValueError(f"engines {missing} have no entry under reconstruction.options "
                             f"(entries: {sorted(self.options)})")
        return self
