"""Simulation nodes (real physics, test-environment sizes) and `kedro run --pipeline simulation`."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro.io.core import Version
from kedro_project import (
    PROJECT_ROOT,
    TEST_DATA,
    latest_version,
    make_project_copy,
    run_kedro,
)

from fly64_kedro.contracts import InputDataError, Measurements
from fly64_kedro.datasets import NPZDataset
from fly64_kedro.parameters import GroundTruthParams, ScanParams, StudyDesign
from fly64_kedro.parameters.study import SPLITS, USER_GROUND_TRUTH, Cell, dose_namespace
from fly64_kedro.physics.forward import extract_patches, far_field_intensity
from fly64_kedro.physics.ground_truth import synthesize_probe
from fly64_kedro.physics.seeds import derive_seed
from fly64_kedro.pipelines.simulation import nodes
from fly64_kedro.settings import CONFIG_LOADER_ARGS

MEASUREMENT_KEYS = {"diffraction", "xcoords", "ycoords", "scan_index", "probeGuess", "intensity_scale", "_metadata"}


def study_parameters() -> tuple[StudyDesign, GroundTruthParams, ScanParams]:
    raw = OmegaConfigLoader(conf_source=str(PROJECT_ROOT / "conf"), env="test", **CONFIG_LOADER_ARGS)["parameters"]
    return (StudyDesign.model_validate(raw["study"]), GroundTruthParams.model_validate(raw["ground_truth"]),
            ScanParams.model_validate(raw["scan"]))


@pytest.fixture(scope="module")
def simulated() -> dict[str, Any]:
    """Ground truth, probe, positions and one diffraction payload per dose, from the nodes.

    The nodes' values (contracts) are under ``values``; the other entries are their payloads,
    what the catalog writes.
    """
    study, ground_truth_params, scan = study_parameters()
    ground_truth = nodes.synthesize_ground_truth(ground_truth_params, study)
    probe = nodes.prepare_probe(ground_truth)
    positions = nodes.draw_scan_positions(ground_truth, study, scan)
    diffraction = {dose: nodes.simulate_diffraction(ground_truth, probe, positions, study, cell=Cell(dose))
                   for dose in study.doses}
    values = {"ground_truth": ground_truth, "probe": probe, "positions": positions, "diffraction": diffraction}
    return {"study": study, "scan": scan, "ground_truth": ground_truth.to_payload(), "probe": probe.to_payload(),
            "positions": positions.to_payload(), "values": values,
            "diffraction": {dose: data.to_payload() for dose, data in diffraction.items()}}


def expected_counts(simulated: dict[str, Any], dose: float) -> np.ndarray:
    """scale · |fftshift(fft2(probe · patch))|², recomputed independently of the node."""
    positions = simulated["positions"]
    patches = extract_patches(simulated["ground_truth"]["objectGuess"], positions["ycoords"], positions["xcoords"],
                              simulated["study"].patch_size)
    intensity = far_field_intensity(patches * simulated["probe"]["probeGuess"]).astype(np.float64)
    return float(simulated["diffraction"][dose]["intensity_scale"]) * intensity


def counts_of(payload: dict[str, Any]) -> np.ndarray:
    return np.rint(payload["diffraction"].astype(np.float64) ** 2)


# ---------------------------------------------------------------- physics of the simulated data


def test_counts_are_non_negative_integers_stored_as_sqrt_float32(simulated: dict[str, Any]) -> None:
    for payload in simulated["diffraction"].values():
        amplitude = payload["diffraction"]
        assert amplitude.dtype == np.float32 and amplitude.min() >= 0
        squared = amplitude.astype(np.float64) ** 2
        assert np.all(np.abs(squared - np.rint(squared)) < 1e-4 * np.maximum(1.0, squared))


def test_mean_total_counts_equal_the_dose_within_poisson_error(simulated: dict[str, Any]) -> None:
    for dose, payload in simulated["diffraction"].items():
        totals = counts_of(payload).sum(axis=(-2, -1))
        n = totals.size
        # the expected totals average exactly to the dose; the Poisson noise of the mean is sqrt(dose / n)
        assert expected_counts(simulated, dose).sum(axis=(-2, -1)).mean() == pytest.approx(dose, rel=1e-5)
        assert abs(totals.mean() - dose) < 5 * np.sqrt(dose / n), (dose, totals.mean())
        assert payload["_metadata"]["counts_statistics"]["mean_total_counts"] == pytest.approx(totals.mean())


def test_each_pattern_is_poisson_about_its_own_expected_counts(simulated: dict[str, Any]) -> None:
    for dose, payload in simulated["diffraction"].items():
        expected = expected_counts(simulated, dose)
        expected_totals = expected.sum(axis=(-2, -1))
        z = (counts_of(payload).sum(axis=(-2, -1)) - expected_totals) / np.sqrt(expected_totals)
        assert abs(z.mean()) < 5 / np.sqrt(z.size) and 0.75 < z.std() < 1.25, (dose, z.mean(), z.std())
        # pixel-level: standardised residuals have unit variance where the mean is not tiny
        bright = expected > 2.0
        residual = (counts_of(payload)[bright] - expected[bright]) / np.sqrt(expected[bright])
        assert abs(residual.mean()) < 5 / np.sqrt(residual.size) and abs(residual.var() - 1) < 0.1


def test_noise_of_different_doses_is_independent(simulated: dict[str, Any]) -> None:
    doses = sorted(simulated["diffraction"])
    residuals = {}
    bright = expected_counts(simulated, doses[0]) > 0.5  # same pixels at every dose
    for dose in doses:
        expected = expected_counts(simulated, dose)[bright]
        residuals[dose] = (counts_of(simulated["diffraction"][dose])[bright] - expected) / np.sqrt(expected)
    limit = 5 / np.sqrt(bright.sum())
    for low, high in itertools.pairwise(doses):
        assert abs(np.corrcoef(residuals[low], residuals[high])[0, 1]) < limit
    # each dose draws from its own stream, derived from the root seed and the dose
    seeds = [simulated["diffraction"][dose]["_metadata"]["poisson_seed"] for dose in doses]
    assert seeds == [derive_seed(simulated["study"].root_seed, "poisson", dose) for dose in doses]
    assert len(set(seeds)) == len(doses)


def test_same_seed_gives_identical_data_and_another_seed_does_not(simulated: dict[str, Any]) -> None:
    study, values = simulated["study"], simulated["values"]
    dose = study.doses[0]
    inputs = values["ground_truth"], values["probe"], values["positions"]
    again = nodes.simulate_diffraction(*inputs, study, cell=Cell(dose))
    first = values["diffraction"][dose]
    assert again.diffraction.tobytes() == first.diffraction.tobytes()
    assert again.metadata == first.metadata
    other_study = study.model_copy(update={"root_seed": study.root_seed + 1})
    other = nodes.simulate_diffraction(*inputs, other_study, cell=Cell(dose))
    assert not np.array_equal(other.diffraction, first.diffraction)
    positions_again = nodes.draw_scan_positions(values["ground_truth"], study, simulated["scan"])
    np.testing.assert_array_equal(positions_again.ycoords, simulated["positions"]["ycoords"])


def test_positions_lie_inside_the_object_with_the_border(simulated: dict[str, Any]) -> None:
    n, height, width = simulated["study"].patch_size, *simulated["ground_truth"]["objectGuess"].shape
    y, x = simulated["positions"]["ycoords"], simulated["positions"]["xcoords"]
    assert y.size == simulated["scan"].n_positions
    assert np.all(y >= n // 2) and np.all(y <= height - n // 2)
    assert np.all(x >= n // 2) and np.all(x <= width - n // 2)
    np.testing.assert_array_equal(simulated["positions"]["scan_index"], np.arange(y.size))


def test_truth_is_kept_out_of_the_measurements(simulated: dict[str, Any]) -> None:
    study = simulated["study"]
    truth = nodes.extract_truth_patches(simulated["values"]["ground_truth"], simulated["values"]["positions"],
                                        study).to_payload()
    np.testing.assert_array_equal(
        truth["Y"], extract_patches(simulated["ground_truth"]["objectGuess"], simulated["positions"]["ycoords"],
                                    simulated["positions"]["xcoords"], study.patch_size))
    assert truth["Y"].dtype == np.complex64
    for payload in simulated["diffraction"].values():
        assert set(payload) == MEASUREMENT_KEYS
    np.testing.assert_array_equal(simulated["probe"]["probeGuess"], simulated["ground_truth"]["probeGuess"])
    assert simulated["probe"]["_metadata"]["probe_diameter_px"] == pytest.approx(study.patch_size / 2, rel=0.15)


# ---------------------------------------------------------------- the split


def test_split_is_disjoint_covering_and_follows_the_rule(simulated: dict[str, Any]) -> None:
    study = simulated["study"]
    full = simulated["diffraction"][study.doses[-1]]
    train, test = (part.to_payload() for part in nodes.split_measurements(simulated["values"]["diffraction"][
        study.doses[-1]], study))
    y = full["ycoords"]
    threshold = y.min() + (y.max() - y.min()) / 2
    assert set(train["scan_index"]).isdisjoint(test["scan_index"])
    assert sorted([*train["scan_index"], *test["scan_index"]]) == list(full["scan_index"])
    assert np.all(train["ycoords"] < threshold) and np.all(test["ycoords"] >= threshold)
    for part, name in ((train, "train"), (test, "test")):
        assert set(part) == MEASUREMENT_KEYS
        rows = part["scan_index"]  # scan_index is the row of the full scan
        np.testing.assert_array_equal(part["diffraction"], full["diffraction"][rows])
        np.testing.assert_array_equal(part["xcoords"], full["xcoords"][rows])
        np.testing.assert_array_equal(part["probeGuess"], full["probeGuess"])
        assert part["intensity_scale"] == full["intensity_scale"]
        metadata = part["_metadata"]
        assert metadata["split"] == name and metadata["split_axis"] == "y"
        assert metadata["split_threshold_px"] == threshold and metadata["n_positions"] == rows.size
        assert "train = y < threshold" in metadata["split_rule"]
        assert [stage["stage"] for stage in metadata["provenance"]][-2:] == ["simulation", "split"]


def test_split_along_x_uses_the_x_coordinates(simulated: dict[str, Any]) -> None:
    study = simulated["study"].model_copy(update={"split_axis": "x"})
    full = simulated["diffraction"][study.doses[0]]
    train, test = nodes.split_measurements(Measurements.from_payload(full, "diffraction"), study)
    threshold = full["xcoords"].min() + (full["xcoords"].max() - full["xcoords"].min()) / 2
    assert np.all(train.xcoords < threshold) and np.all(test.xcoords >= threshold)
    assert train.scan_index.size + test.scan_index.size == full["scan_index"].size


# ---------------------------------------------------------------- bad user ground truth


def user_ground_truth(simulated: dict[str, Any], **changes: Any) -> dict[str, Any]:
    payload = {"objectGuess": simulated["ground_truth"]["objectGuess"].copy(),
               "probeGuess": simulated["ground_truth"]["probeGuess"].copy(), "_metadata": {}}
    payload.update(changes)
    return {key: value for key, value in payload.items() if value is not None}


@pytest.mark.parametrize(("change", "field", "phrases"), [
    ("real_object", "objectGuess", ["a complex array (complex64)", "dtype float32"]),
    ("wrong_probe_size", "probeGuess", ["shape (32, 32) (patch_size N)", "shape (48, 48)"]),
    ("small_object", "objectGuess", ["at least 2N = 64 px", "shape (32, 192)"]),
    ("nan_object", "objectGuess", ["finite values", "1 NaN/inf value(s)"]),
    ("nan_probe", "probeGuess", ["finite values", "2 NaN/inf value(s)"]),
    ("missing_probe", "probeGuess", ["a present array", "missing (keys: ['objectGuess'])"]),
    ("probe_3d", "probeGuess", ["a 2-D array", "shape (1, 32, 32)"]),
])
def test_bad_user_ground_truth_is_refused_clearly(
    simulated: dict[str, Any], change: str, field: str, phrases: list[str]
) -> None:
    obj, probe = simulated["ground_truth"]["objectGuess"], simulated["ground_truth"]["probeGuess"]
    nan_object, nan_probe = obj.copy(), probe.copy()
    nan_object[5, 7] = np.nan
    nan_probe[0, :2] = np.inf
    bad = {
        "real_object": {"objectGuess": np.abs(obj)},
        "wrong_probe_size": {"probeGuess": synthesize_probe(48, 0.5, 24.0)},
        "small_object": {"objectGuess": obj[:32, :]},
        "nan_object": {"objectGuess": nan_object},
        "nan_probe": {"probeGuess": nan_probe},
        "missing_probe": {"probeGuess": None},
        "probe_3d": {"probeGuess": probe[None]},
    }[change]
    payload = user_ground_truth(simulated, **bad)
    with pytest.raises(InputDataError) as info:
        nodes.import_ground_truth(payload, simulated["study"])
    message = str(info.value)
    assert info.value.dataset == USER_GROUND_TRUTH and info.value.field == field
    assert f"dataset '{USER_GROUND_TRUTH}', field '{field}'" in message
    for phrase in phrases:
        assert phrase in message, message


# ---------------------------------------------------------------- kedro run, end to end


def load(path: Path) -> dict[str, Any]:
    return NPZDataset(filepath=str(path)).load()


@pytest.fixture(scope="module")
def simulation_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project copy where `kedro run --pipeline simulation --env test` ran twice."""
    project = make_project_copy(tmp_path_factory.mktemp("simulation") / "project")
    run_kedro(project, "run", "--pipeline", "simulation", "--env", "test")
    run_kedro(project, "run", "--pipeline", "simulation", "--env", "test")
    return project


@pytest.mark.e2e
def test_kedro_run_writes_every_output_with_provenance(simulation_project: Path) -> None:
    study, _, scan = study_parameters()
    data = simulation_project / TEST_DATA
    ground_truth = load(latest_version(data / "01_raw" / "ground_truth.npz"))
    probe = load(latest_version(data / "02_intermediate" / "probe.npz"))
    truth = load(latest_version(data / "02_intermediate" / "truth_patches.npz"))
    assert ground_truth["probeGuess"].shape == (study.patch_size,) * 2
    assert probe["_metadata"]["probe_diameter_px"] == pytest.approx(study.patch_size / 2, rel=0.15)
    assert truth["Y"].shape == (scan.n_positions, study.patch_size, study.patch_size)
    for dose in study.doses:
        namespace = dose_namespace(dose)
        full = load(latest_version(data / "02_intermediate" / namespace / "diffraction.npz"))
        counts = counts_of(full)
        metadata = full["_metadata"]
        assert metadata["dose"] == dose and metadata["N"] == study.patch_size
        assert metadata["intensity_scale"] == float(full["intensity_scale"]) > 0
        assert isinstance(metadata["poisson_seed"], int)
        assert metadata["counts_statistics"]["mean_total_counts"] == pytest.approx(counts.sum(axis=(1, 2)).mean())
        assert metadata["counts_statistics"]["zero_pixel_fraction"] == pytest.approx((counts == 0).mean())
        assert abs(counts.sum(axis=(1, 2)).mean() - dose) < 5 * np.sqrt(dose / counts.shape[0])
        parts = {split: load(latest_version(data / "03_primary" / namespace / split / "measurements.npz"))
                 for split in SPLITS}
        assert sum(part["diffraction"].shape[0] for part in parts.values()) == scan.n_positions
        for split, part in parts.items():
            assert set(part) == MEASUREMENT_KEYS
            metadata = part["_metadata"]
            assert metadata["split"] == split and "threshold" in metadata["split_rule"]
            assert metadata["dose"] == dose and metadata["intensity_scale"] == float(part["intensity_scale"])
            assert metadata["counts_statistics"] == full["_metadata"]["counts_statistics"]
            stages = [entry["stage"] for entry in metadata["provenance"]]
            assert stages == ["ground_truth", "probe", "simulation", "split"]
            # each stage records the versioned file it read
            inputs = [entry["input"] for entry in metadata["provenance"][1:]]
            assert all(entry["path"].endswith(".npz") and entry["version"] for entry in inputs)
            assert inputs[-1]["path"].endswith(f"{namespace}/diffraction.npz/{inputs[-1]['version']}/diffraction.npz")
            scan_source = metadata["scan_positions_source"]
            assert scan_source["path"].endswith(f"scan_positions.npz/{scan_source['version']}/scan_positions.npz")


@pytest.mark.e2e
def test_kedro_runs_are_versioned_and_reproducible(simulation_project: Path) -> None:
    study, _, _ = study_parameters()
    for dose in study.doses:
        folder = simulation_project / TEST_DATA / "03_primary" / dose_namespace(dose) / "test" / "measurements.npz"
        versions = sorted(p.name for p in folder.iterdir())
        assert len(versions) == 2
        first, second = (NPZDataset(filepath=str(folder), version=Version(v, None)).load() for v in versions)
        for key in MEASUREMENT_KEYS - {"_metadata"}:
            assert first[key].tobytes() == second[key].tobytes(), key
        assert first["_metadata"]["counts_statistics"] == second["_metadata"]["counts_statistics"]


def use_user_ground_truth(project: Path, payload: dict[str, np.ndarray]) -> None:
    """What the README asks of a user, in the test environment: their NPZ, `ground_truth.source: catalog`, the entry."""
    user_file = project / "data" / "my_sample.npz"
    np.savez(user_file, **payload)
    parameters_file = project / "conf" / "test" / "parameters_simulation.yml"
    parameters = yaml.safe_load(parameters_file.read_text())
    parameters["ground_truth"]["source"] = "catalog"
    parameters_file.write_text(yaml.safe_dump(parameters))
    (project / "conf" / "test" / "catalog_user.yml").write_text(yaml.safe_dump({"user_ground_truth": {
        "type": "fly64_kedro.datasets.ObjectNPZDataset", "filepath": "data/my_sample.npz",
        "image_key": "objectGuess", "required_keys": ["objectGuess", "probeGuess"],
    }}))


@pytest.mark.e2e
def test_kedro_run_on_a_user_ground_truth(project_copy: Path) -> None:
    rng = np.random.default_rng(11)
    size, n = 160, 32
    yy, xx = np.indices((size, size))
    obj = (0.8 + 0.2 * np.cos(xx / 5.0)) * np.exp(1j * 0.5 * np.sin(yy / 7.0) + 0.1j * rng.standard_normal((size, size)))
    probe = np.exp(-((yy[:n, :n] - n / 2) ** 2 + (xx[:n, :n] - n / 2) ** 2) / (2 * 5.0**2)) * np.exp(0.3j * xx[:n, :n])
    use_user_ground_truth(project_copy, {"objectGuess": obj.astype(np.complex64), "probeGuess": probe.astype(np.complex64)})
    run_kedro(project_copy, "run", "--pipeline", "simulation", "--env", "test")
    data = project_copy / TEST_DATA
    imported = load(latest_version(data / "01_raw" / "ground_truth.npz"))  # the user's object, nothing synthesized
    np.testing.assert_array_equal(imported["objectGuess"], obj.astype(np.complex64))
    assert imported["_metadata"]["provenance"][-1]["input"]["path"].endswith("data/my_sample.npz")
    assert imported["_metadata"]["provenance"][-1]["fields"]["source"].startswith("user file")
    saved_probe = load(latest_version(data / "02_intermediate" / "probe.npz"))
    np.testing.assert_array_equal(saved_probe["probeGuess"], probe.astype(np.complex64))
    truth = load(latest_version(data / "02_intermediate" / "truth_patches.npz"))
    np.testing.assert_array_equal(truth["Y"], extract_patches(obj.astype(np.complex64), truth["ycoords"],
                                                              truth["xcoords"], n))
    assert truth["ycoords"].max() <= size - n // 2
    study, _, _ = study_parameters()
    for dose in study.doses:
        part = load(latest_version(data / "03_primary" / dose_namespace(dose) / "train" / "measurements.npz"))
        np.testing.assert_array_equal(part["probeGuess"], probe.astype(np.complex64))


@pytest.mark.e2e
def test_kedro_run_refuses_a_real_valued_user_object(project_copy: Path) -> None:
    obj = np.ones((160, 160), dtype=np.float32)
    probe = synthesize_probe(32, 0.5, 16.0)
    use_user_ground_truth(project_copy, {"objectGuess": obj, "probeGuess": probe})
    result = run_kedro(project_copy, "run", "--pipeline", "simulation", "--env", "test", check=False)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert ("dataset 'user_ground_truth', field 'objectGuess': expected a complex array (complex64); found dtype "
            "float32" in output), output[-3000:]
    assert not list((project_copy / TEST_DATA).rglob("*.npz"))
