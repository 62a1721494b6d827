"""Comparison: cells with a failed arm still produce rows and a summary; the e2e table is complete."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from contract_payloads import selection_telemetry
from kedro_project import TEST_DATA, latest_version, project_parameters

from fly64_kedro.contracts import GroundTruth, ObjectEstimate, ScanView
from fly64_kedro.methods import study_methods
from fly64_kedro.metrics.score import expected_metrics
from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.comparison import ComparisonParams
from fly64_kedro.parameters.reconstruction import ReconstructionParams
from fly64_kedro.parameters.study import SPLITS, Cell
from fly64_kedro.physics.geometry import canvas_for_positions
from fly64_kedro.physics.ground_truth import synthesize_object, synthesize_probe
from fly64_kedro.physics.scan import random_positions
from fly64_kedro.pipelines.comparison.nodes import (
    build_metrics_table,
    score_view_cell,
    summarize_study,
)

N = 32
STUDY = StudyDesign(doses=[1e3], patch_size=N, views={"baseline": {"gridsize": 1}}, neighbor_count=7, root_seed=1)


@pytest.fixture(scope="module")
def comparison() -> ComparisonParams:
    return ComparisonParams.model_validate(project_parameters()["comparison"])


@pytest.fixture(scope="module")
def cell() -> tuple[GroundTruth, ScanView]:
    obj = synthesize_object(128, 12, 0.9, (0.55, 1.0), 1.0, 0.04, 0.15, 1.5, seed=3)
    truth = GroundTruth(obj, synthesize_probe(N, 0.5, N / 2))
    y, x = random_positions(obj.shape, N, 60, np.random.default_rng(0))
    view = ScanView.from_payload({
        "diffraction": np.ones((y.size, N, N), np.float32), "ycoords": y, "xcoords": x, "scan_index": np.arange(y.size),
        "probeGuess": truth.probe, "intensity_scale": np.array(1.0),
        "_metadata": selection_telemetry(y.size, view="baseline"),
    }, "dose_1000.baseline.test.scan_view")
    return truth, view


def _on_canvas(obj: np.ndarray, view: ScanView) -> ObjectEstimate:
    origin, shape = canvas_for_positions(view.ycoords, view.xcoords, N, 0)  # inside the object: N/2 from its edge
    oy, ox = origin.astype(int)
    return ObjectEstimate(obj[oy:oy + shape[0], ox:ox + shape[1]].copy(), origin)


def test_a_failed_arm_gives_rows_with_its_status_and_the_summary_still_renders(cell, comparison) -> None:
    truth, view = cell
    failed = ObjectEstimate.unusable("failed", "LinAlgError: singular matrix", {})
    noisy = _on_canvas(truth.obj * np.exp(0.3j) * 1.1, view)
    scores, aligned = score_view_cell(truth, view, STUDY, comparison, cell=Cell(1e3, "baseline", "test"),
                                      pinn=noisy, pinn_gs1=noisy, lsqml=failed)
    metrics, _ = build_metrics_table(cell=scores)
    lsqml = metrics[metrics["method"] == "lsqml"]
    assert set(lsqml["status"]) == {"failed"} and set(lsqml["reason"]) == {"LinAlgError: singular matrix"}
    assert lsqml["value"].isna().all()
    assert "lsqml" not in aligned and {"truth", "support", "pinn", "flat_floor", "truth_ceiling"} <= set(aligned)
    # a global phase offset and scale are removed by the alignment: the network arm reaches the ceiling
    scored = metrics[metrics["component"].isin(["amplitude", "phase"])].set_index(["method", "component", "metric"])
    for component in ("amplitude", "phase"):
        for metric in ("ssim", "ms_ssim", "pearson", "rmse"):
            assert scored.loc[("pinn", component, metric), "value"] == pytest.approx(
                scored.loc[("truth_ceiling", component, metric), "value"], abs=1e-5)
        assert scored.loc[("flat_floor", component, "pearson"), "value"] == pytest.approx(0.0, abs=1e-9)
    summary, markdown = summarize_study(STUDY, study_methods(STUDY, ["lsqml"]), cell=scores)
    failed = [note for note in summary["not_scored"] if note["status"] == "failed"]
    assert [(n["method"], n["reason"]) for n in failed] == [("lsqml", "LinAlgError: singular matrix")]
    assert "## Not scored" in markdown and "singular matrix" in markdown
    row = summary["tables"]["test"][0]
    assert row["lsqml phase ms_ssim"] is None and row["pinn − lsqml phase ms_ssim"] is None
    assert row["pinn phase ms_ssim"] == pytest.approx(row["truth_ceiling phase ms_ssim"], abs=1e-5)
    assert row["flat_floor phase ms_ssim"] < 0.2 < row["truth_ceiling phase ms_ssim"]


@pytest.mark.e2e
def test_default_run_table_holds_every_cell_method_and_metric(study_run: Path) -> None:
    params = project_parameters("test")
    study = StudyDesign.model_validate(params["study"])
    comparison = ComparisonParams.model_validate(params["comparison"])
    engines = ReconstructionParams.model_validate(params["reconstruction"]).engines
    methods = [method.name for method in study_methods(study, engines)]
    table = pd.read_csv(latest_version(study_run / TEST_DATA / "08_reporting" / "metrics_table.csv"))
    cells = len(study.doses) * len(study.views) * len(SPLITS)
    assert len(table) == cells * len(methods) * len(expected_metrics(comparison))
    assert set(table["method"]) == set(methods)
    assert not table.duplicated(["dose", "view", "split", "method", "component", "metric"]).any()
    # the ceiling goes through the same alignment as every arm: registering the whole truth against
    # its own support may move it by one sub-pixel step (1/upsample_factor px), no more
    ceiling = table[(table["method"] == "truth_ceiling") & (table["metric"] == "rmse")]
    assert (ceiling["status"] == "ok").all() and (ceiling["value"] < 0.02).all()
    floor = table[(table["method"] == "flat_floor") & (table["metric"] == "pearson")]
    assert (floor["value"].abs() < 1e-6).all()
    for name in ("study_summary.md", "metric_vs_dose_test.png", "frc_curves.png"):
        assert latest_version(study_run / TEST_DATA / "08_reporting" / name).stat().st_size > 0
