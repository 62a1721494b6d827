"""The job node and the aggregates: records, skip/fail classification, manifest and skip summary."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest
from contract_payloads import selection_telemetry
from reconstruction_support import (
    dense_scan,
    overflow_factor,
    params,
    scan_view,
    simulate_view,
)

from fly64_kedro.contracts import ObjectEstimate
from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.study import Cell
from fly64_kedro.pipelines.reconstruction.nodes import (
    SELECTION_FIELDS,
    reconstruct_view,
    summarize_jobs,
)

STUDY = StudyDesign(doses=[1e3], patch_size=32, views={"baseline": {}, "sparse": {"overlap_fraction": 0.2,
                                                                                   "gridsize": 2}},
                    neighbor_count=7, root_seed=1)
CELL = Cell(1e3, "sparse", "test")
RECORD_FIELDS = {  # every job record holds these
    "dose", "view", "split", "engine", "status", "reason", "n_positions", "epochs_completed", "final_loss",
    "runtime_s", "peak_rss_mb", "peak_gpu_mb", "device", "ptychi_version", "input_dataset", "options",
    *SELECTION_FIELDS,
}


def sparse_metadata(view: dict[str, Any], n_kept: int) -> dict[str, Any]:
    """Selection telemetry of a greedy sparse view that kept ``n_kept`` of 40 positions."""
    return {**view["_metadata"], **selection_telemetry(n_kept, selection_strategy="greedy", acceptance_rate=n_kept / 40,
                                                       spacing_threshold=25.6, n_rejected=40 - n_kept,
                                                       measured_overlap=0.0,
                                                       sufficient_for={"iterative": n_kept >= 2, "pinn": n_kept >= 4})}


def subset(view: dict[str, Any], keep: np.ndarray) -> dict[str, Any]:
    per_position = ("diffraction", "ycoords", "xcoords", "scan_index")
    return {key: (value[keep] if key in per_position else value) for key, value in view.items()}


def run_job(view: dict[str, Any], engine: str = "lsqml", **overrides: Any) -> tuple[ObjectEstimate, dict[str, Any]]:
    return reconstruct_view(scan_view(view), params(engine, **overrides), STUDY, cell=CELL, engine=engine)


@pytest.mark.parametrize("engine", ["lsqml", "epie", "dm"])
def test_an_ok_job_records_every_field_and_the_views_telemetry(engine: str) -> None:
    view = {**dense_scan()[0], "_metadata": sparse_metadata(dense_scan()[0], 100)}
    estimate, record = run_job(view, engine, num_epochs=3)
    assert RECORD_FIELDS <= set(record)
    assert {name: record[name] for name in SELECTION_FIELDS} == {name: view["_metadata"][name]
                                                                   for name in SELECTION_FIELDS}
    assert record["status"] == "ok" and record["reason"] is None and record["engine"] == engine
    assert record["job"] == "dose_1000.sparse.test" and record["n_positions"] == 100
    assert record["epochs_completed"] == 3 and record["final_loss"] == estimate.loss_history[-1]
    assert record["options"]["num_epochs"] == 3
    assert record["input_dataset"] == {"name": "dose_1000.sparse.test.scan_view", "path": "memory://scan_view.npz",
                                       "version": "2026-01-01T00.00.00.000Z"}
    assert record["device"].startswith("cpu") and record["peak_rss_mb"] > 0 and record["runtime_s"] > 0
    assert estimate.ok and list(estimate.object.shape) == record["canvas_shape"]
    assert estimate.canvas_origin_yx.tolist() == record["canvas_origin_yx"]
    assert estimate.probe is None  # fixed probe
    payload = estimate.to_payload()
    assert "probe" not in payload
    metadata = payload["_metadata"]
    assert metadata["status"] == "ok" and metadata["provenance"][-1]["stage"] == engine
    assert metadata["provenance"][-1]["input"] == view["_metadata"]["_loaded_from"]
    json.dumps(record, allow_nan=False)


def test_engines_take_their_own_seed() -> None:
    """Each engine's job has a seed of its own, derived from the root seed, the engine and the cell."""
    view = {**dense_scan()[0], "_metadata": sparse_metadata(dense_scan()[0], 100)}
    seeds = {engine: run_job(view, engine, num_epochs=1)[1]["seed"] for engine in ("lsqml", "epie")}
    assert seeds["lsqml"] != seeds["epie"]
    assert run_job(view, "lsqml", num_epochs=1)[1]["seed"] == seeds["lsqml"]


def test_a_refined_probe_is_returned_in_probe_guess_scaling() -> None:
    """At 1e3 photons sqrt(intensity_scale) ≈ 0.1, so a probe left in counts scaling is 10× off."""
    view, _ = simulate_view(100, 1e3)
    assert abs(np.log10(np.sqrt(float(view["intensity_scale"])))) > 0.8
    estimate, record = run_job(view, num_epochs=3, refine_probe=True, noise_model="gaussian")
    assert record["status"] == "ok"
    probe, guess = estimate.probe, view["probeGuess"]
    assert probe.shape == guess.shape and probe.dtype == np.complex64
    assert 0.5 < np.linalg.norm(probe) / np.linalg.norm(guess) < 1.5
    assert abs(np.vdot(probe, guess)) / (np.linalg.norm(probe) * np.linalg.norm(guess)) > 0.9


def test_a_view_with_one_position_is_skipped_with_its_reason() -> None:
    view = subset(dense_scan()[0], np.arange(1))
    view["_metadata"] = sparse_metadata(view, 1)
    estimate, record = run_job(view)
    assert record["status"] == "skipped" and record["failure_category"] == "too_few_positions"
    assert "1 position(s)" in record["reason"] and "at least 2" in record["reason"]
    assert estimate.object.shape == (0, 0) and estimate.object.dtype == np.complex64 and not estimate.ok
    assert estimate.canvas_origin_yx.tolist() == record["canvas_origin_yx"] == [0.0, 0.0]
    assert record["canvas_shape"] == [0, 0]
    metadata = estimate.to_payload()["_metadata"]
    assert metadata["status"] == "skipped" and metadata["reason"] == record["reason"]


def test_two_positions_in_a_row_are_skipped_when_the_probe_is_refined() -> None:
    view = subset(dense_scan()[0], np.arange(2))
    view["ycoords"] = np.full(2, view["ycoords"][0])
    view["_metadata"] = sparse_metadata(view, 2)
    _, record = run_job(view, refine_probe=True)
    assert record["status"] == "skipped" and record["failure_category"] == "degenerate_scan"
    assert "span 0 px in y" in record["reason"]
    _, fixed = run_job(view)  # with the known probe fixed, two positions reconstruct
    assert fixed["status"] == "ok"


def test_a_view_without_photons_fails_with_its_reason() -> None:
    view = {**dense_scan()[0], "diffraction": np.zeros_like(dense_scan()[0]["diffraction"])}
    estimate, record = run_job(view)
    assert record["status"] == "failed" and record["failure_category"] == "no_photons"
    assert "hold no photons" in record["reason"] and not estimate.ok


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # pty-chi, by design of the test
def test_a_numerical_failure_is_a_failed_record_not_a_crash() -> None:
    """float32 overflow: the same scan with its brightest pixel at 1e38 counts."""
    factor = overflow_factor(dense_scan()[0]["diffraction"] ** 2)
    view = {**dense_scan()[0], "diffraction": dense_scan()[0]["diffraction"] * np.sqrt(factor),
            "intensity_scale": np.asarray(dense_scan()[0]["intensity_scale"] * factor)}
    estimate, record = run_job(view, num_epochs=4)
    assert record["status"] == "failed" and record["failure_category"] == "numerical_failure"
    assert re.match(r"NonFiniteResultError: the loss became (nan|inf) in epoch 0", record["reason"])
    assert record["epochs_completed"] == 1 and record["final_loss"] is None and record["device"].startswith("cpu")
    assert estimate.object.shape == (0, 0) and not np.isfinite(estimate.loss_history).any()
    json.dumps(record, allow_nan=False)
    json.dumps(estimate.to_payload()["_metadata"], allow_nan=False)


def _record(job: str, status: str, reason: str | None = None) -> dict[str, Any]:
    _, view, split = job.split(".")
    return {"job": job, "engine": "lsqml", "dose": 1e3, "view": view, "split": split, "status": status,
            "reason": reason,
            "failure_category": None if status == "ok" else f"{status}_category", "n_positions": 3,
            "epochs_completed": 0, "runtime_s": 1.5}


def test_manifest_and_skip_summary() -> None:
    records = [_record("dose_1000.baseline.train", "ok"), _record("dose_1000.sparse.train", "skipped", "too few"),
               _record("dose_1000.sparse.test", "failed", "NonFiniteResultError: …")]
    manifest, summary = summarize_jobs(params(), STUDY, *records)
    assert manifest["totals"] == {"ok": 1, "failed": 1, "skipped": 1, "jobs": 3}
    assert manifest["totals_by_engine"] == {"lsqml": {"ok": 1, "failed": 1, "skipped": 1}}
    assert manifest["engines"] == {"lsqml": "pty-chi LSQML"}
    assert manifest["jobs"] == records and manifest["runtime_s"] == 4.5
    assert manifest["parameters"]["reconstruction"]["options"]["lsqml"]["num_epochs"] == 2 and manifest["parameters"]["study"]["patch_size"] == 32
    assert manifest["ptychi_version"].startswith("2.2") and summary["run_id"] == manifest["run_id"]
    assert [entry["job"] for entry in summary["skipped"]] == ["dose_1000.sparse.train"]
    assert summary["failed"][0] == {"job": "dose_1000.sparse.test", "engine": "lsqml", "dose": 1e3, "view": "sparse", "split": "test",
                                    "failure_category": "failed_category", "reason": "NonFiniteResultError: …",
                                    "n_positions": 3, "epochs_completed": 0}
    assert (summary["n_jobs"], summary["n_skipped"], summary["n_failed"]) == (3, 1, 1)
    json.dumps([manifest, summary], allow_nan=False)
