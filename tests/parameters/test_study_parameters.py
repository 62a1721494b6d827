"""Study, ground-truth and scan parameters: every environment validates, bad values fail clearly.

Bad values are checked twice: on the pydantic models, and through ``kedro run`` in a
project copy, where the error must stop the run before any node runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro_project import PROJECT_ROOT, run_kedro
from pydantic import ValidationError

from fly64_kedro.parameters import (
    GroundTruthParams,
    ParameterError,
    ScanParams,
    StudyDesign,
    validate_parameters,
)
from fly64_kedro.settings import CONFIG_LOADER_ARGS

VALID_STUDY: dict[str, Any] = {
    "doses": [1e3, 1e4, 1e5],
    "patch_size": 64,
    "views": {"baseline": {"overlap_fraction": None, "gridsize": 1},
              "dense": {"overlap_fraction": 0.7, "gridsize": 2},
              "sparse": {"overlap_fraction": 0.2, "gridsize": 2}},
    "neighbor_count": 7,
    "split_axis": "y",
    "root_seed": 42,
}


def parameters(env: str) -> dict[str, Any]:
    loader = OmegaConfigLoader(conf_source=str(PROJECT_ROOT / "conf"), env=env, **CONFIG_LOADER_ARGS)
    return loader["parameters"]


def squash(text: str) -> str:
    """Whitespace-normalised text (pydantic and rich wrap long messages)."""
    return " ".join(text.split())


@pytest.mark.parametrize("env", ["local", "test", "paper"])
def test_every_environment_validates(env: str) -> None:
    raw = parameters(env)
    study = StudyDesign.model_validate(raw["study"])
    GroundTruthParams.model_validate(raw["ground_truth"])
    ScanParams.model_validate(raw["scan"])
    assert study.patch_size % 2 == 0 and all(dose > 0 for dose in study.doses)


def test_paper_environment_is_the_original_design() -> None:
    raw = parameters("paper")
    study = StudyDesign.model_validate(raw["study"])
    assert study.patch_size == 128 and study.doses == [1e3, 1e4, 1e5] and study.neighbor_count == 7
    assert study.views["dense"].overlap_fraction == 0.7 and study.views["sparse"].overlap_fraction == 0.2
    assert study.spacing_threshold("dense") == pytest.approx(38.4)
    assert study.spacing_threshold("sparse") == pytest.approx(102.4)
    assert study.spacing_threshold("baseline") is None


def test_spacing_threshold_is_one_minus_f_times_n() -> None:
    study = StudyDesign.model_validate(VALID_STUDY)
    assert study.spacing_threshold("dense") == pytest.approx(19.2)
    assert study.spacing_threshold("sparse") == pytest.approx(51.2)


def with_change(path: str, value: Any) -> dict[str, Any]:
    """VALID_STUDY with the dotted ``path`` set to ``value``."""
    study = yaml.safe_load(yaml.safe_dump(VALID_STUDY))
    *parents, leaf = path.split(".")
    node = study
    for key in parents:
        node = node[key]
    node[leaf] = value
    return study


# (dotted parameter, bad value, phrases the error must contain: parameter, allowed range, value)
BAD_STUDY = [
    ("views.sparse.overlap_fraction", 1.2, ["views.sparse.overlap_fraction", "must be in [0, 1)", "got 1.2"]),
    ("views.dense.overlap_fraction", -0.1, ["views.dense.overlap_fraction", "must be in [0, 1)", "got -0.1"]),
    ("neighbor_count", 3, ["neighbor_count must be ≥ C = gridsize² = 4", "got 3"]),
    ("doses", [], ["doses", "at least 1 item", "not 0"]),
    ("doses", [1e3, -5.0], ["doses", "every dose must be a finite number > 0", "-5.0"]),
    ("doses", [0.0], ["doses", "every dose must be a finite number > 0", "0.0"]),
    ("doses", [1e3, float("inf")], ["doses", "every dose must be a finite number > 0", "inf"]),
    ("patch_size", 63, ["patch_size", "positive even integer", "got 63"]),
    ("patch_size", 0, ["patch_size", "greater than 0", "input_value=0"]),
    ("views.dense.gridsize", 3, ["views.dense.gridsize", "1 or 2", "input_value=3"]),
    ("split_axis", "z", ["split_axis", "'y' or 'x'", "input_value='z'"]),
    ("root_seed", -1, ["root_seed", "greater than or equal to 0", "input_value=-1"]),
    ("spacing", 1.0, ["spacing", "Extra inputs are not permitted"]),
]


@pytest.mark.parametrize(("path", "value", "phrases"), BAD_STUDY, ids=[f"{p}={v}" for p, v, _ in BAD_STUDY])
def test_bad_study_values_name_parameter_range_and_value(path: str, value: Any, phrases: list[str]) -> None:
    with pytest.raises(ValidationError) as info:
        StudyDesign.model_validate(with_change(path, value))
    message = squash(str(info.value))
    for phrase in phrases:
        assert phrase in message, message


def test_bad_ground_truth_and_scan_values_are_refused() -> None:
    raw = parameters("local")
    ground_truth = yaml.safe_load(yaml.safe_dump(raw["ground_truth"]))
    ground_truth["object"]["amplitude_range"] = [1.0, 0.5]
    with pytest.raises(ValidationError, match=r"object\.amplitude_range\n.*0 < low < high ≤ 1; got \(1\.0, 0\.5\)"):
        GroundTruthParams.model_validate(ground_truth)
    ground_truth = yaml.safe_load(yaml.safe_dump(raw["ground_truth"]))
    ground_truth["source"] = "url"
    with pytest.raises(ValidationError, match="source"):
        GroundTruthParams.model_validate(ground_truth)
    with pytest.raises(ValidationError, match=r"n_positions\n.*greater than 0"):
        ScanParams.model_validate({**raw["scan"], "n_positions": 0})
    with pytest.raises(ValidationError, match=r"pattern\n.*'random' or 'raster'"):
        ScanParams.model_validate({**raw["scan"], "pattern": "spiral"})


# (override of the base parameters, phrases of the message: the full parameter path, the rule, the value)
BAD_RUNS = [
    ({"study": {"views": {"sparse": {"overlap_fraction": 1.2}}}},
     ["study.views.sparse.overlap_fraction: overlap_fraction must be in [0, 1); got 1.2"]),
    ({"study": {"neighbor_count": 3}}, ["study: neighbor_count must be ≥ C = gridsize² = 4; got 3"]),
    ({"study": {"doses": []}}, ["study.doses: List should have at least 1 item"]),
    ({"study": {"doses": [-1000.0]}}, ["study.doses: every dose must be a finite number > 0 photons; got [-1000.0]"]),
    ({"study": {"patch_size": 63}}, ["study.patch_size: patch_size must be a positive even integer; got 63"]),
    ({"scan": {"n_positions": 0}}, ["scan.n_positions: Input should be greater than 0 (got 0)"]),
]


def _merged(override: dict[str, Any]) -> dict[str, Any]:
    raw = yaml.safe_load(yaml.safe_dump(parameters("local")))
    for section, values in override.items():
        for key, value in values.items():
            if isinstance(value, dict):
                for inner, item in value.items():
                    raw[section][key][inner] = {**raw[section][key].get(inner, {}), **item}
            else:
                raw[section][key] = value
    return raw


@pytest.mark.parametrize(("override", "phrases"), BAD_RUNS, ids=[str(o) for o, _ in BAD_RUNS])
def test_every_parameter_problem_is_one_line_with_its_path(override: dict[str, Any], phrases: list[str]) -> None:
    with pytest.raises(ParameterError) as info:
        validate_parameters(_merged(override))
    message = squash(info.value.message)
    for phrase in phrases:
        assert phrase in message, message


@pytest.mark.e2e
def test_kedro_run_stops_before_any_node_on_bad_parameters(project_copy: Path) -> None:
    (project_copy / "conf" / "bad").mkdir()
    (project_copy / "conf" / "bad" / "parameters.yml").write_text(yaml.safe_dump(BAD_RUNS[0][0]))
    result = run_kedro(project_copy, "run", "--pipeline", "simulation", "--env", "bad", check=False)
    output = squash(result.stdout + result.stderr)
    assert result.returncode != 0
    assert BAD_RUNS[0][1][0] in output, output[-3000:]
    assert "Running node" not in output and "Traceback" not in output
    assert not [p for p in (project_copy / "data").rglob("*") if p.is_file()]
