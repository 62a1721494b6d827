"""Every registered pty-chi engine in the shared runner: it reconstructs, and its settings are checked."""

from __future__ import annotations

import shlex

import numpy as np
import pytest
from kedro.framework.cli.utils import _split_params
from kedro_project import PROJECT_ROOT, project_parameters
from pydantic import ValidationError
from reconstruction_support import (
    SETTINGS,
    dense_scan,
    options,
    params,
    problem,
    truth_on_canvas,
)
from test_lsqml import illuminated, phase_correlation

from fly64_kedro.parameters import validate_parameters
from fly64_kedro.parameters.reconstruction import ReconstructionParams
from fly64_kedro.reconstruction import ENGINES, run_engine


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_every_engine_recovers_the_phase_of_a_dense_scan(engine: str) -> None:
    """15 epochs from the flat object with the known probe.

    Phase correlation on the illuminated region, seed 3 on this machine: LSQML 0.90, ePIE
    0.92, DM 0.96; a flat start scores about 0 and swapped axes 0.26, so 0.8 separates a
    working engine from a broken convention with room for platforms.
    """
    view, obj = dense_scan()
    dense = problem(view)
    result = run_engine(ENGINES[engine], options(engine, num_epochs=15), dense, SETTINGS, seed=3, label=engine)
    truth = truth_on_canvas(obj, dense.canvas_origin_yx, dense.canvas_shape)
    assert result.object.shape == dense.canvas_shape and result.object.dtype == np.complex64
    assert phase_correlation(result.object, truth, illuminated(dense)) > 0.8
    assert result.epochs_completed == 15 and np.isfinite(result.loss_history).all()


def test_an_unknown_engine_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValidationError, match=r"unknown engine\(s\) \['rpie'\]; known: \['dm', 'epie', 'lsqml'\]"):
        ReconstructionParams(engines=["rpie"], options={"rpie": {"num_epochs": 2}}, canvas_margin_px=2, device="cpu")


def test_a_listed_engine_needs_its_options() -> None:
    with pytest.raises(ValidationError, match=r"engines \['epie'\] have no entry under reconstruction.options"):
        ReconstructionParams(engines=["lsqml", "epie"], options={"lsqml": {"num_epochs": 2, "batch_size": 8}},
                             canvas_margin_px=2, device="cpu")


@pytest.mark.parametrize(("engine", "field", "value"), [
    ("epie", "object_alpha", 2.0), ("dm", "exit_wave_update_relaxation", 0.0), ("lsqml", "noise_model", "cauchy"),
    ("dm", "batch_size", 8),  # DM updates every position at once: no minibatches
])
def test_engine_options_are_checked_by_that_engines_model(engine: str, field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=rf"{engine}\.{field}: .*\(found {value!r}\)"):
        params(engine, **{field: value})


def test_options_are_typed_per_engine() -> None:
    settings = ReconstructionParams(engines=["lsqml", "dm"], canvas_margin_px=2, device="cpu",
                                    options={"lsqml": {"num_epochs": 2, "batch_size": 8}, "dm": {"num_epochs": 3}})
    assert isinstance(settings.options["dm"], ENGINES["dm"].options_model)
    assert settings.options["dm"].exit_wave_update_relaxation == 1.0
    assert settings.options["lsqml"].noise_model == "poisson"


def test_each_engine_says_what_its_loss_measures() -> None:
    assert "DM error" in ENGINES["dm"].loss_definition
    assert ENGINES["lsqml"].loss_definition == ENGINES["epie"].loss_definition
    assert "sqrt(intensity)" in ENGINES["lsqml"].loss_definition


def test_the_readme_engine_lines_select_the_engines_they_say() -> None:
    """The README's `kedro run --params reconstruction.engines=…` lines, parsed as Kedro's CLI parses them."""
    lines = [line for line in (PROJECT_ROOT / "README.md").read_text().splitlines()
             if line.startswith(".venv/bin/kedro run --params") and "reconstruction.engines" in line]
    selected = []
    for line in lines:
        command = shlex.split(line.split("#")[0])
        overrides = _split_params(None, None, command[command.index("--params") + 1])
        raw = project_parameters()
        merged = {**raw, "reconstruction": {**raw["reconstruction"], **overrides["reconstruction"]}}
        selected.append(validate_parameters(merged)["reconstruction"].engines)
    assert selected == [["lsqml", "epie", "dm"], ["dm"]]
