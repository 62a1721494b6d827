"""Selection nodes, wiring and the `kedro run --pipeline selection --env test` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fly64_kedro.contracts import (
    GroundTruth,
    InputDataError,
    Measurements,
    Probe,
    ScanView,
)
from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.selection import SelectionParams
from fly64_kedro.parameters.study import SPLITS, Cell
from fly64_kedro.physics.selection import lens_overlap_fraction
from fly64_kedro.pipelines.selection import create_pipeline
from fly64_kedro.pipelines.selection.nodes import (
    TABLE_COLUMNS,
    plot_selection,
    select_scan_views,
    summarize_selection,
)
from fly64_kedro.provenance import add_stage

N = 16
DIAMETER = 9.0

STUDY = StudyDesign.model_validate({
    "doses": [1e3, 1e4],
    "patch_size": N,
    "views": {
        "baseline": {"overlap_fraction": None, "gridsize": 1},
        "dense": {"overlap_fraction": 0.5, "gridsize": 2},   # S = 8 px
        "sparse": {"overlap_fraction": 0.0, "gridsize": 2},  # S = 16 px
    },
    "neighbor_count": 4,
    "root_seed": 1,
})
SELECTION = SelectionParams.model_validate({
    "bound_cap": 0.10, "bound_factor": 0.8, "floor_minimum": 0.0005, "iterative_min_positions": 2,
    "figure": {"panel_size_in": 2.0, "dpi": 40, "disc_alpha": 0.2},
})
METADATA_TYPES = {
    "selection_strategy": str, "acceptance_rate": float, "spacing_threshold": (float, type(None)),
    "n_accepted": int, "n_rejected": int, "overlap_fraction": (float, type(None)),
    "geometry_acceptance_bound": (float, type(None)), "effective_min_acceptance": (float, type(None)),
    "below_floor": bool, "measured_overlap": (float, type(None)), "probe_diameter_px": float, "view": str,
    "gridsize": int, "min_positions": dict, "sufficient_for": dict,
}


def measurements(n: int = 120, seed: int = 0) -> dict:
    """A measurements payload; diffraction[i] is filled with scan_index[i] so rows can be traced."""
    rng = np.random.default_rng(seed)
    y, x = rng.integers(N // 2, 120, size=(2, n)).astype(np.float64)
    index = np.arange(100, 100 + n)
    return {
        "diffraction": np.broadcast_to(index[:, None, None], (n, N, N)).astype(np.float32),
        "ycoords": y, "xcoords": x, "scan_index": index,
        "probeGuess": np.full((N, N), 1 + 1j, dtype=np.complex64),
        "intensity_scale": np.array(3.5),
        "_metadata": add_stage(None, "split", {"split": "test", "n_positions": n}),
    }


PROBE = {"probeGuess": np.ones((N, N), np.complex64), "_metadata": {"probe_diameter_px": DIAMETER}}


def select_both(view: str, train: dict, test: dict, probe: dict = PROBE) -> tuple[ScanView, ScanView]:
    """The node on payloads, loaded as the catalog loads them (the contracts check them there)."""
    splits = {split: Measurements.from_payload(payload, f"dose_1000.{split}.measurements")
              for split, payload in (("train", train), ("test", test))}
    return select_scan_views(splits["train"], splits["test"], Probe.from_payload(probe, "probe"), STUDY, SELECTION,
                             cell=Cell(1000.0, view))


def select(view: str, payload: dict | None = None, probe: dict = PROBE, train: dict | None = None) -> dict:
    """The payload of the test split's view of ``payload`` (a default measurements payload serves as the train split)."""
    train = measurements(seed=9) if train is None else train
    _, test = select_both(view, train, payload if payload is not None else measurements(), probe)
    return test.to_payload()


# ---------------------------------------------------------------- the node


@pytest.mark.parametrize("view", ["baseline", "dense", "sparse"])
def test_scan_view_metadata_schema_and_consistency(view: str) -> None:
    source = measurements()
    result = select(view, source)
    meta = result["_metadata"]
    for field, kind in METADATA_TYPES.items():
        assert isinstance(meta[field], kind), f"{field}: {meta[field]!r}"
    n, kept = source["ycoords"].size, result["ycoords"].size
    assert (meta["n_accepted"], meta["n_rejected"]) == (kept, n - kept)
    assert meta["acceptance_rate"] == pytest.approx(kept / n)
    assert meta["view"] == view and meta["gridsize"] == STUDY.views[view].gridsize
    assert meta["min_positions"] == {"iterative": 2, "pinn": STUDY.views[view].gridsize ** 2}
    assert meta["sufficient_for"] == {"iterative": kept >= 2, "pinn": kept >= meta["min_positions"]["pinn"]}
    assert meta["probe_diameter_px"] == DIAMETER
    # kept rows travel together: each pattern is the one of its position
    np.testing.assert_array_equal(result["diffraction"][:, 0, 0], result["scan_index"])
    positions = dict(zip(source["scan_index"], zip(source["ycoords"], source["xcoords"])))
    assert [positions[i] for i in result["scan_index"]] == list(zip(result["ycoords"], result["xcoords"]))
    np.testing.assert_array_equal(result["probeGuess"], source["probeGuess"])
    assert float(result["intensity_scale"]) == 3.5
    # provenance is added to, not replaced
    assert [entry["stage"] for entry in meta["provenance"]] == ["split", "selection"]
    assert meta["split"] == "test" and meta["n_positions"] == kept
    # measured overlap recomputed from the kept arrays by brute force
    d = np.hypot(result["ycoords"][:, None] - result["ycoords"], result["xcoords"][:, None] - result["xcoords"])
    k = min(STUDY.neighbor_count, kept - 1)
    nearest = np.sort(d, axis=1)[:, 1:k + 1]
    assert meta["measured_overlap"] == pytest.approx(lens_overlap_fraction(nearest, DIAMETER).mean())
    assert meta["measured_overlap_neighbors"] == k


def test_baseline_keeps_everything_and_spacing_views_respect_s() -> None:
    base = select("baseline")["_metadata"]
    assert base["selection_strategy"] == "all" and base["spacing_threshold"] is None
    assert base["n_rejected"] == 0 and base["acceptance_rate"] == 1.0 and base["overlap_fraction"] is None
    counts = {}
    for view, spacing in (("dense", 8.0), ("sparse", 16.0)):
        result = select(view)
        meta = result["_metadata"]
        assert meta["spacing_threshold"] == spacing and meta["selection_strategy"] in ("direct", "greedy")
        d2 = (result["ycoords"][:, None] - result["ycoords"]) ** 2 + (result["xcoords"][:, None] - result["xcoords"]) ** 2
        np.fill_diagonal(d2, np.inf)
        assert d2.min() >= spacing**2
        assert meta["effective_min_acceptance"] == pytest.approx(
            max(0.0005, 0.8 * meta["geometry_acceptance_bound"]))
        assert meta["below_floor"] == (meta["acceptance_rate"] < meta["effective_min_acceptance"])
        fell_back = meta["strategy_decision"]["direct_below_floor"]
        assert fell_back["test"] == (meta["direct_acceptance_rate"] < meta["effective_min_acceptance"])
        assert meta["selection_strategy"] == ("greedy" if any(fell_back.values()) else "direct")
        counts[view] = meta["n_accepted"]
    assert base["n_accepted"] > max(counts.values())
    assert base["measured_overlap"] > select("dense")["_metadata"]["measured_overlap"]


def test_one_strategy_per_view_for_both_splits() -> None:
    """A split whose direct rule reaches its floor still goes greedy when the other split needs greedy."""
    crowded = measurements(120, seed=3)  # dense random positions: the direct rule keeps few, greedy is needed
    spread = measurements(9)
    grid = np.meshgrid(np.arange(10.0, 120.0, 40.0), np.arange(10.0, 120.0, 40.0), indexing="ij")
    spread["ycoords"], spread["xcoords"] = grid[0].ravel(), grid[1].ravel()  # 40 px apart: direct keeps all
    alone = select_both("sparse", spread, spread)
    assert {view.telemetry.selection_strategy for view in alone} == {"direct"}
    train, test = select_both("sparse", spread, crowded)
    for view in (train, test):
        meta = view.metadata
        assert meta["selection_strategy"] == "greedy"
        assert meta["strategy_decision"]["direct_below_floor"] == {"train": False, "test": True}
        for field in ("selection_strategy", "acceptance_rate", "spacing_threshold", "n_accepted", "n_rejected"):
            assert field in meta  # the original study's five telemetry fields
    assert train.telemetry.n_accepted == 9  # greedy keeps every one of the spread positions too


def test_too_small_view_is_written_with_flags() -> None:
    # three positions far apart: every view keeps all three; gridsize 2 needs 4
    payload = measurements(3)
    payload["ycoords"], payload["xcoords"] = np.array([10.0, 60.0, 110.0]), np.array([10.0, 60.0, 110.0])
    meta = select("sparse", payload)["_metadata"]
    assert meta["n_accepted"] == 3
    assert meta["sufficient_for"] == {"iterative": True, "pinn": False}
    one = measurements(1)
    assert select("dense", one)["_metadata"]["sufficient_for"] == {"iterative": False, "pinn": False}
    assert select("dense", one)["_metadata"]["measured_overlap"] is None


def test_bad_measurements_name_dataset_and_field() -> None:
    missing = measurements()
    del missing["ycoords"]
    with pytest.raises(InputDataError, match=r"'dose_1000\.test\.measurements', field 'ycoords'.*missing"):
        select("dense", missing)
    nan = measurements()
    nan["xcoords"][3] = np.nan
    with pytest.raises(InputDataError, match=r"field 'xcoords': expected finite coordinates.*1 NaN"):
        select("dense", nan)
    empty = measurements()
    for key in ("ycoords", "xcoords", "scan_index"):
        empty[key] = empty[key][:0]
    empty["diffraction"] = empty["diffraction"][:0]
    with pytest.raises(InputDataError, match=r"field 'diffraction': expected a non-empty set of patterns"):
        select("baseline", empty)
    short = measurements()
    short["diffraction"] = short["diffraction"][:-1]
    with pytest.raises(InputDataError, match=r"field 'ycoords': expected shape \(119,\): one per pattern"):
        select("sparse", short)
    with pytest.raises(InputDataError, match=r"'probe', field '_metadata.probe_diameter_px'.*None"):
        select("sparse", probe={"probeGuess": PROBE["probeGuess"], "_metadata": {}})
    bad = measurements()
    bad["diffraction"] = bad["diffraction"].copy()
    bad["diffraction"][4, 2, :3] = np.nan
    with pytest.raises(InputDataError, match=r"'dose_1000\.train\.measurements', field 'diffraction'.*3 NaN"):
        select("baseline", train=bad)
    bad["diffraction"][4, 2, :3] = -1.0
    with pytest.raises(InputDataError, match=r"field 'diffraction'.*≥ 0.*3 negative"):
        select("baseline", train=bad)


# ---------------------------------------------------------------- report, table, figure


def test_summary_has_one_row_per_view_and_lists_flags() -> None:
    one = measurements(1)
    views = [select_both(view, measurements(seed=9), measurements())[1] for view in STUDY.views]
    views.append(select_both("dense", measurements(seed=9), one)[1])
    report, table = summarize_selection(*views)
    assert list(table.columns) == list(TABLE_COLUMNS) and len(table) == 4
    assert table["n_accepted"].tolist() == [view.telemetry.n_accepted for view in views]
    assert table["view"].tolist() == ["baseline", "dense", "sparse", "dense"]
    assert report["insufficient"] == {"iterative": ["dose_1000.dense.test"], "pinn": ["dose_1000.dense.test"]}
    assert [row["measured_overlap"] for row in report["rows"]] == [view.telemetry.measured_overlap for view in views]
    json.dumps(report, allow_nan=False)


def test_figure_has_a_panel_per_view_with_probe_discs() -> None:
    ground_truth = GroundTruth(np.ones((128, 128), np.complex64), PROBE["probeGuess"])
    views = [split_view for view in STUDY.views for split_view in select_both(view, measurements(seed=9),
                                                                               measurements())]
    figure = plot_selection(ground_truth, SELECTION, *views)
    assert len(figure.axes) == len(STUDY.views)
    for axis, view in zip(figure.axes, STUDY.views):
        discs = axis.collections
        assert len(discs) == len(SPLITS)
        assert sum(len(c.get_offsets()) for c in discs) == sum(
            v.telemetry.n_accepted for v in views if v.telemetry.view == view)


# ---------------------------------------------------------------- wiring


def test_pipeline_has_one_job_per_dose_and_view_and_no_truth_in_scan_views() -> None:
    pipeline = create_pipeline(STUDY)
    jobs = [node for node in pipeline.nodes if node.func.__name__ == "select_scan_views"]
    assert len(jobs) == len(STUDY.doses) * len(STUDY.views)
    job = next(node for node in jobs if node.name == "dose_1000.selection.select_sparse")
    assert job.inputs == ["dose_1000.train.measurements", "dose_1000.test.measurements", "probe", "params:study",
                          "params:selection"]
    assert job.outputs == ["dose_1000.sparse.train.scan_view", "dose_1000.sparse.test.scan_view"]
    assert {"selection", "dose_1000", "sparse"} <= job.tags
    readers_of_truth = {node.name for node in pipeline.nodes if {"ground_truth", "truth_patches"} & set(node.inputs)}
    assert readers_of_truth == {"plot_selection"}
    summary = next(node for node in pipeline.nodes if node.name == "summarize_selection")
    assert len(summary.inputs) == len(jobs) * len(SPLITS)
