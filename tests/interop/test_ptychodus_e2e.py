"""ptychodus end to end: a product written by ptychodus's own writer is the ground truth of the whole
test study, and every arm of every cell comes out as a product that ptychodus's reader opens where it lies.

Also the README's ptychodus recipes, as written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from kedro_project import (
    TEST_DATA,
    kedro_env,
    latest_version,
    project_parameters,
    readme_recipes,
    run_kedro,
)
from ptychodus.api.geometry import PixelGeometry
from ptychodus.api.io import load_product, save_product
from ptychodus.api.object import Object, ObjectCenter
from ptychodus.api.probe import ProbeSequence
from ptychodus.api.probe_positions import ProbePosition, ProbePositionSequence
from ptychodus.api.product import Product, ProductMetadata

from fly64_kedro.datasets import NPZDataset, ObjectNPZDataset
from fly64_kedro.datasets.ptychodus_product import EXPORT_RECORD
from fly64_kedro.parameters import StudyDesign
from fly64_kedro.physics.ground_truth import synthesize_object, synthesize_probe

RAW = project_parameters("test")
STUDY = StudyDesign.model_validate(RAW["study"])
PIXEL_M = RAW["export"]["pixel_size_m"]


def _beamline_product() -> Product:
    """What a beamline user brings: two object slices, two incoherent probe modes, its own positions, 8 nm pixels."""
    n = STUDY.patch_size
    first = synthesize_object(192, 18, 0.9, (0.6, 1.0), 0.8, 0.03, 0.1, 1.5, seed=11)
    obj = np.stack([first, np.ones_like(first)]).astype(np.complex64)
    probe = np.stack([synthesize_probe(n, 0.5, n / 2), 0.1 * synthesize_probe(n, 0.4, n / 2)]).astype(np.complex64)
    pixel = PixelGeometry(width_m=8e-9, height_m=8e-9)
    return Product(
        metadata=ProductMetadata(name="siemens star, beamline", comments="written by ptychodus", detector_distance_m=2.0,
                                 photon_energy_eV=9000.0, probe_photon_count=1e7, exposure_time_s=0.05,
                                 mass_attenuation_m2_per_kg=0.0, tomography_angle_deg=0.0),
        probe_positions=ProbePositionSequence([ProbePosition(i, 5e-8 * i, 5e-8 * i) for i in range(10)]),
        probes=ProbeSequence(array=probe, opr_weights=None, pixel_geometry=pixel),
        object_=Object(array=obj, pixel_geometry=pixel, center=ObjectCenter(x_m=0.0, y_m=0.0), layer_spacing_m=[1e-6]),
        losses=[],
    )


def _arm_datasets(view: str) -> dict[str, str]:
    arms = {"pinn": "pinn_object.npz", "lsqml": "lsqml_object.npz"}
    if STUDY.views[view].gridsize > 1:
        arms["pinn_gs1"] = "pinn_gs1_object.npz"
    return arms


@pytest.mark.e2e
def test_a_ptychodus_product_is_the_ground_truth_of_the_test_study_and_every_arm_exports(project_copy: Path) -> None:
    data = project_copy / TEST_DATA
    (data / "01_raw").mkdir(parents=True)
    product = _beamline_product()
    save_product(data / "01_raw" / "beamline_product.h5", product)  # ptychodus's own writer
    (project_copy / "conf" / "test" / "catalog_user.yml").write_text(
        "user_ground_truth:\n  type: fly64_kedro.datasets.PtychodusProductDataset\n"
        "  filepath: ${globals:data_root}/01_raw/beamline_product.h5\n")
    (project_copy / "conf" / "test" / "parameters_user.yml").write_text("ground_truth:\n  source: catalog\n")
    run_kedro(project_copy, "run", "--env", "test")

    # the ground truth is the product's slice 0 and mode 0, recorded as such, and heads the lineage
    truth = NPZDataset(filepath=str(latest_version(data / "01_raw" / "ground_truth.npz"))).load()
    np.testing.assert_array_equal(truth["objectGuess"], product.object_.get_layer(0))
    np.testing.assert_array_equal(truth["probeGuess"], product.probes.get_array()[0, 0])
    record = truth["_metadata"]["ptychodus_product"]
    assert record["name"] == "siemens star, beamline" and record["object_layers_in_file"] == 2
    assert record["probe_taken"] == "OPR mode 0, incoherent mode 0" and record["pixel_size_m"]["width"] == 8e-9
    assert truth["_metadata"]["lineage"]["ancestors"]["user_ground_truth"]

    # every arm of every cell: a product ptychodus reads, holding that arm's object and the view's positions
    files, total_bytes = 0, 0
    for study_cell in STUDY.cells():
        namespace, view, split, cell = study_cell.dose_namespace, study_cell.view, study_cell.split, str(study_cell)
        folder = latest_version(data / "09_export" / namespace / view / split / "ptychodus")
        export_record = json.loads((folder / EXPORT_RECORD).read_text())
        arms = _arm_datasets(view)
        assert set(export_record["arms"]) == set(arms), cell
        assert export_record["_metadata"]["lineage"]["ancestors"]  # the export's own lineage
        scan_view = NPZDataset(filepath=str(latest_version(data / "04_feature" / namespace / view / split /
                                                           "scan_view.npz"))).load()
        for arm, object_file in arms.items():
            source = ObjectNPZDataset(filepath=str(latest_version(data / "07_model_output" / namespace / view / split /
                                                                  object_file))).load()
            entry = export_record["arms"][arm]
            if source["_metadata"].get("status", "ok") != "ok":
                assert entry["file"] is None and entry["status"] == source["_metadata"]["status"] and entry["reason"]
                assert not (folder / f"{arm}.h5").exists()
                continue
            exported = load_product(folder / entry["file"])
            np.testing.assert_array_equal(exported.object_.get_layer(0), source["object"])
            geometry = exported.object_.get_geometry()
            origin = source["canvas_origin_yx"]
            np.testing.assert_allclose(geometry.map_probe_positions_to_object_y_px(exported.probe_positions),
                                       scan_view["ycoords"] - origin[0], atol=1e-9)
            np.testing.assert_allclose(geometry.map_probe_positions_to_object_x_px(exported.probe_positions),
                                       scan_view["xcoords"] - origin[1], atol=1e-9)
            np.testing.assert_array_equal(exported.probes.get_array()[0, 0], scan_view["probeGuess"])
            assert geometry.pixel_width_m == PIXEL_M
            assert exported.metadata.name == f"{cell}.{arm}" and cell in exported.metadata.comments
            assert source["_metadata"]["lineage"]["run_id"] in exported.metadata.comments
        files += len(list(folder.iterdir()))
        total_bytes += sum(path.stat().st_size for path in folder.iterdir())

    provenance = json.loads(latest_version(data / "08_reporting" / "run_provenance.json").read_text())
    export_seconds = sum(node["seconds"] for node in provenance["nodes"] if "export" in node["tags"])
    print(f"\nexport, test environment: {files} files, {total_bytes / 1e6:.2f} MB, {export_seconds:.2f} s of node time")

    # the README's way of opening an export, as written but in the test environment's data directory
    reader = readme_recipes()["ptychodus: read an export"].replace('"data/', '"data/test/')
    result = subprocess.run([sys.executable, "-c", reader], cwd=project_copy, env=kedro_env(), check=True,
                            capture_output=True, text=True)
    assert "dose_1000.dense.test.lsqml" in result.stdout


@pytest.mark.e2e
def test_the_readme_ptychodus_ground_truth_recipe_runs_as_written(project_copy: Path) -> None:
    recipes = readme_recipes()
    subprocess.run([sys.executable, "-c", recipes["ptychodus: python"]], cwd=project_copy, env=kedro_env(), check=True)
    (project_copy / "conf" / "local" / "parameters.yml").write_text(recipes["conf/local/parameters.yml"])
    (project_copy / "conf" / "local" / "catalog.yml").write_text(recipes["ptychodus: conf/local/catalog.yml"])
    user_file = project_copy / yaml.safe_load(recipes["ptychodus: conf/local/catalog.yml"])["user_ground_truth"]["filepath"]
    run_kedro(project_copy, "run", "--pipeline", "simulation")
    written = NPZDataset(filepath=str(latest_version(project_copy / "data" / "01_raw" / "ground_truth.npz"))).load()
    product = load_product(user_file)
    np.testing.assert_array_equal(written["objectGuess"], product.object_.get_layer(0))
    np.testing.assert_array_equal(written["probeGuess"], product.probes.get_array()[0, 0])
    assert written["_metadata"]["ptychodus_product"]["format"] == "HDF5"
