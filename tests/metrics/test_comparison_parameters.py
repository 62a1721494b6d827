"""``params:comparison``: every environment validates; bad values fail with the parameter's name."""

from __future__ import annotations

import pytest
from kedro.config import OmegaConfigLoader
from metrics_support import CONF, base_parameters
from pydantic import ValidationError

from fly64_kedro.parameters.comparison import ComparisonParams


@pytest.mark.parametrize("env", ["base", "test", "paper"])
def test_every_environment_validates(env: str) -> None:
    loader = OmegaConfigLoader(str(CONF), base_env="base", default_run_env=env, env=None if env == "base" else env,
                               merge_strategy={"parameters": "soft"})
    params = ComparisonParams.model_validate(loader["parameters"]["comparison"])
    assert params.alignment.border_trim_px >= params.alignment.max_shift_px
    assert not params.alignment.remove_phase_ramp  # off by default in every environment


def _with(section: str, **values: object) -> dict:
    raw = base_parameters("comparison")["comparison"]
    return {**raw, section: {**raw[section], **values}}


@pytest.mark.parametrize(("section", "values", "message"), [
    ("alignment", {"border_trim_px": 2, "max_shift_px": 3.0}, "border_trim_px must be ≥ ceil"),
    ("support", {"threshold": 1.0}, "threshold"),
    ("alignment", {"margin_fraction": 0.25}, "margin_fraction"),  # retired: the support replaced it
    ("alignment", {"registration_image": "phase"}, "registration_image"),
    ("alignment", {"upsample_factor": 0}, "upsample_factor"),
    ("ms_ssim", {"win_size": 10}, "window sizes must be odd"),
    ("ms_ssim", {"min_win_size": 13}, "min_win_size"),
    ("ms_ssim", {"weights": [0.5, -0.1]}, "weight must be > 0"),
    ("frc", {"thresholds": {"frc50": 1.5}}, "FRC thresholds must be in"),
    ("ssim", {"surprise": 1}, "surprise"),
])
def test_bad_values_are_named(section: str, values: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ComparisonParams.model_validate(_with(section, **values))
