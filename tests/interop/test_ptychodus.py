"""ptychodus interoperability: products this project writes read back through ptychodus's own reader,
products ptychodus's own writers make read as the study's ground truth, and bad files refused clearly.

ptychodus (a ``dev`` extra) is used only here, as the reference: its ``load_product`` (HDF5),
``save_product`` and NPZ product plugin are the layouts the project's code must match.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from kedro.io.core import DatasetError, Version
from kedro_project import project_parameters
from ptychodus.api.constants import energy_eV_to_wavelength_m
from ptychodus.api.geometry import ImageExtent, PixelGeometry
from ptychodus.api.io import load_product, save_product
from ptychodus.api.object import Object, ObjectCenter
from ptychodus.api.probe import ProbeSequence
from ptychodus.api.probe_positions import ProbePosition, ProbePositionSequence
from ptychodus.api.product import Product, ProductMetadata
from ptychodus.api.propagate import compute_far_field_pixel_geometry
from ptychodus.plugins.h5_product_file import H5ProductFileIO
from ptychodus.plugins.npz_product_file import NPZProductFileIO

from fly64_kedro.contracts import GroundTruth, InputDataError, ObjectEstimate, ScanView
from fly64_kedro.datasets import (
    NPZDataset,
    PtychodusExportDataset,
    PtychodusProductDataset,
)
from fly64_kedro.datasets.ptychodus_product import EXPORT_RECORD
from fly64_kedro.methods import study_methods
from fly64_kedro.parameters import StudyDesign
from fly64_kedro.parameters.export import ExportParams
from fly64_kedro.parameters.study import USER_GROUND_TRUTH, Cell
from fly64_kedro.physics.ground_truth import synthesize_object, synthesize_probe
from fly64_kedro.pipelines.export.nodes import export_cell

RAW = project_parameters("test")
STUDY = StudyDesign.model_validate(RAW["study"])
EXPORT = ExportParams.model_validate(RAW["export"])
N = STUDY.patch_size
DESCRIPTIONS = {method.name: method.description for method in study_methods(STUDY, ["lsqml"])}


def _ground_truth(payload: dict[str, Any]) -> GroundTruth:
    """The study's own check of a user ground truth (the ``GroundTruth`` contract at N)."""
    return GroundTruth.from_payload(payload, USER_GROUND_TRUTH).checked_for(N, USER_GROUND_TRUTH)


def _exported(inputs: dict[str, Any], cell: Cell, arms: tuple[str, ...]) -> dict[str, Any]:
    """``export_cell`` on the inputs' payloads, loaded as the catalog loads them."""
    view = inputs["scan_view"]
    scan_view = ScanView(np.zeros((view["ycoords"].size, N, N), np.float32), view["ycoords"], view["xcoords"],
                         view["scan_index"], view["probeGuess"], 1.0, view["_metadata"])
    estimates = {arm: ObjectEstimate.from_payload(inputs[arm], f"{cell}.{arm}_object") for arm in arms}
    return export_cell(scan_view, EXPORT, STUDY, cell=cell, descriptions=DESCRIPTIONS, **estimates)


def _complex(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def _cell_inputs(lsqml_status: str = "ok") -> dict[str, Any]:
    """A scan view and three arm objects on different canvases, as the training and reconstruction stages write them."""
    rng = np.random.default_rng(7)
    n = 23
    ycoords = rng.integers(40, 150, n).astype(np.float64)
    xcoords = rng.integers(30, 160, n).astype(np.float64)
    scan_view = {"ycoords": ycoords, "xcoords": xcoords, "scan_index": np.arange(100, 100 + n),
                 "probeGuess": _complex(rng, (N, N)), "_metadata": {"lineage": {"run_id": "run-sv"}}}

    def arm(origin: tuple[float, float], shape: tuple[int, int], run: str) -> dict[str, Any]:
        return {"object": _complex(rng, shape), "canvas_origin_yx": np.array(origin),
                "_metadata": {"status": "ok", "lineage": {"run_id": run, "fingerprint": "f" * 16}}}

    pinn = arm((22.0, 12.0), (146, 166), "run-pinn")
    pinn_gs1 = arm((22.0, 12.0), (146, 166), "run-pinn")
    lsqml = {**arm((23.0, 13.0), (144, 164), "run-lsqml"), "loss_history": np.linspace(3.0, 1.0, 20)}
    if lsqml_status != "ok":
        lsqml = {"object": np.zeros((0, 0), np.complex64), "canvas_origin_yx": np.zeros(2),
                 "loss_history": np.zeros(0),
                 "_metadata": {"status": lsqml_status, "reason": "too few positions for LSQML"}}
    return {"scan_view": scan_view, "pinn": pinn, "pinn_gs1": pinn_gs1, "lsqml": lsqml}


def _export(tmp_path: Path, inputs: dict[str, Any], version: str = "2030-01-01T00.00.00.000Z") -> Path:
    payload = _exported(inputs, Cell(1000.0, "dense", "test"), ("pinn", "pinn_gs1", "lsqml"))
    payload["_metadata"]["lineage"] = {"run_id": "run-export", "fingerprint": "e" * 16}  # as the lineage hook adds
    dataset = PtychodusExportDataset(filepath=str(tmp_path / "ptychodus"), version=Version(None, version))
    dataset.save(payload)
    return tmp_path / "ptychodus" / version / "ptychodus"


# ------------------------------------------------------------------------------- export → ptychodus


def test_an_exported_product_reads_back_through_ptychodus_with_the_same_arrays_positions_and_metadata(
        tmp_path: Path) -> None:
    inputs = _cell_inputs()
    folder = _export(tmp_path, inputs)
    assert sorted(p.name for p in folder.iterdir()) == [EXPORT_RECORD, "lsqml.h5", "pinn.h5", "pinn_gs1.h5"]
    view = inputs["scan_view"]
    for arm in ("pinn", "pinn_gs1", "lsqml"):
        product = load_product(folder / f"{arm}.h5")
        assert H5ProductFileIO().read(folder / f"{arm}.h5").metadata == product.metadata  # the plugin ptychodus uses
        source = inputs[arm]
        # the object: the arm's canvas, one layer, bit for bit
        np.testing.assert_array_equal(product.object_.get_array(), source["object"][np.newaxis])
        np.testing.assert_array_equal(product.object_.get_layer(0), source["object"])
        # the probe: the view's known probe, one mode
        np.testing.assert_array_equal(product.probes.get_array(), view["probeGuess"][np.newaxis, np.newaxis])
        # positions: metres = study object pixels × pixel size; ptychodus maps them onto the canvas
        positions = product.probe_positions
        np.testing.assert_array_equal(positions.get_indexes(), view["scan_index"])
        np.testing.assert_allclose(positions.get_coordinates_x_m(), view["xcoords"] * EXPORT.pixel_size_m, rtol=1e-12)
        np.testing.assert_allclose(positions.get_coordinates_y_m(), view["ycoords"] * EXPORT.pixel_size_m, rtol=1e-12)
        geometry = product.object_.get_geometry()
        origin = source["canvas_origin_yx"]
        np.testing.assert_allclose(geometry.map_probe_positions_to_object_x_px(positions), view["xcoords"] - origin[1],
                                   atol=1e-9)
        np.testing.assert_allclose(geometry.map_probe_positions_to_object_y_px(positions), view["ycoords"] - origin[0],
                                   atol=1e-9)
        assert geometry.pixel_width_m == geometry.pixel_height_m == EXPORT.pixel_size_m
        assert product.probes.get_pixel_geometry() == PixelGeometry(EXPORT.pixel_size_m, EXPORT.pixel_size_m)
        # metadata: name, comments naming the cell, arm and run; a far-field geometry consistent with the pixel size
        metadata = product.metadata
        assert metadata.name == f"dose_1000.dense.test.{arm}"
        assert "dose_1000.dense.test" in metadata.comments and f"Arm {arm}" in metadata.comments
        assert source["_metadata"]["lineage"]["run_id"] in metadata.comments
        assert metadata.probe_photon_count == 1000.0 and metadata.far_field
        assert metadata.photon_energy_eV == EXPORT.photon_energy_eV
        detector = PixelGeometry(EXPORT.detector_pixel_size_m, EXPORT.detector_pixel_size_m)
        back = compute_far_field_pixel_geometry(detector, ImageExtent(width_px=N, height_px=N),
                                                wavelength_m=energy_eV_to_wavelength_m(metadata.photon_energy_eV),
                                                propagation_distance_m=metadata.detector_distance_m)
        assert back.width_m == pytest.approx(EXPORT.pixel_size_m, rel=1e-9)
    losses = load_product(folder / "lsqml.h5").losses
    np.testing.assert_allclose([loss.value for loss in losses], inputs["lsqml"]["loss_history"])
    assert [loss.epoch for loss in losses] == list(range(20))


def test_lsqml_exports_its_refined_probe_and_says_so(tmp_path: Path) -> None:
    inputs = _cell_inputs()
    inputs["lsqml"]["probe"] = _complex(np.random.default_rng(1), (N, N))
    folder = _export(tmp_path, inputs)
    product = load_product(folder / "lsqml.h5")
    np.testing.assert_array_equal(product.probes.get_array()[0, 0], inputs["lsqml"]["probe"])
    assert "the known probe as refined by lsqml" in product.metadata.comments
    np.testing.assert_array_equal(load_product(folder / "pinn.h5").probes.get_array()[0, 0],
                                  inputs["scan_view"]["probeGuess"])


def test_the_export_folder_loads_back_and_records_every_arm(tmp_path: Path) -> None:
    inputs = _cell_inputs()
    _export(tmp_path, inputs)
    loaded = PtychodusExportDataset(filepath=str(tmp_path / "ptychodus"), version=Version(None, None)).load()
    assert set(loaded) == {"pinn", "pinn_gs1", "lsqml", "_metadata"}
    np.testing.assert_array_equal(loaded["lsqml"]["object"][0], inputs["lsqml"]["object"])
    assert loaded["_metadata"]["lineage"]["run_id"] == "run-export"
    assert loaded["_metadata"]["arms"] == {"pinn": "ok", "lsqml": "ok", "pinn_gs1": "ok"}
    assert loaded["lsqml"]["_metadata"]["export_lineage"]["run_id"] == "run-export"  # in every file, for ptychodus users
    preview = json.loads(PtychodusExportDataset(filepath=str(tmp_path / "ptychodus"), version=Version(None, None)).preview())
    assert preview["arms"]["lsqml"]["file"] == "lsqml.h5"  # kedro-viz shows the record


def test_a_skipped_arm_gets_a_record_and_no_file(tmp_path: Path) -> None:
    folder = _export(tmp_path, _cell_inputs(lsqml_status="skipped"))
    assert not (folder / "lsqml.h5").exists() and (folder / "pinn.h5").exists()
    loaded = PtychodusExportDataset(filepath=str(tmp_path / "ptychodus"), version=Version(None, None)).load()
    assert loaded["lsqml"] == {"status": "skipped", "reason": "too few positions for LSQML"}


def test_a_failed_write_leaves_no_folder(tmp_path: Path) -> None:
    inputs = _cell_inputs()
    payload = _exported(inputs, Cell(1000.0, "baseline", "train"), ("pinn", "lsqml"))
    payload["lsqml"]["object"] = payload["lsqml"]["object"].real  # not complex: refused before a byte is written
    dataset = PtychodusExportDataset(filepath=str(tmp_path / "out" / "ptychodus"))
    with pytest.raises(DatasetError, match=r"arm 'lsqml': field 'object': expected a complex array; found dtype float32"):
        dataset.save(payload)
    assert not (tmp_path / "out").exists()


def test_an_exported_product_is_a_ground_truth_with_a_new_lineage(tmp_path: Path) -> None:
    inputs = _cell_inputs()
    folder = _export(tmp_path, inputs)
    truth = PtychodusProductDataset(filepath=str(folder / "lsqml.h5")).load()
    np.testing.assert_array_equal(truth["objectGuess"], inputs["lsqml"]["object"])
    np.testing.assert_array_equal(truth["probeGuess"], inputs["scan_view"]["probeGuess"])
    record = truth["_metadata"]["ptychodus_product"]
    assert record["exported_from"]["run_id"] == "run-lsqml"
    assert "lineage" not in truth["_metadata"]  # a root: its content, not the old run, heads the new study's lineage
    assert base64.b64decode(PtychodusProductDataset(filepath=str(folder / "lsqml.h5")).preview())[:4] == b"\x89PNG"


# ------------------------------------------------------------------------------- ptychodus → ground truth


def _ptychodus_product(layers: int = 2, opr: int = 2, modes: int = 3, probe_pixel: float = 1e-8) -> Product:
    """A product as ptychodus builds one: multi-slice object, OPR and incoherent probe modes, positions in metres."""
    rng = np.random.default_rng(3)
    first = synthesize_object(160, 12, 0.9, (0.6, 1.0), 0.8, 0.03, 0.1, 2.0, seed=5)[:, :150]
    obj = np.stack([first, *(_complex(rng, first.shape) for _ in range(layers - 1))]).astype(np.complex128)
    probe = np.stack([np.stack([synthesize_probe(N, 0.5, N / 2) * (m + 1) * (o + 1) for m in range(modes)])
                      for o in range(opr)]).astype(np.complex64)
    pixel = PixelGeometry(width_m=1e-8, height_m=1e-8)
    return Product(
        metadata=ProductMetadata(name="beamline sample", comments="from ptychodus", detector_distance_m=1.5,
                                 photon_energy_eV=8000.0, probe_photon_count=1e6, exposure_time_s=0.1,
                                 mass_attenuation_m2_per_kg=0.0, tomography_angle_deg=0.0),
        probe_positions=ProbePositionSequence([ProbePosition(i, 1e-8 * i, -2e-8 * i) for i in range(7)]),
        probes=ProbeSequence(array=probe, opr_weights=rng.random((7, opr)) if opr > 1 else None,
                             pixel_geometry=PixelGeometry(probe_pixel, probe_pixel)),
        object_=Object(array=obj, pixel_geometry=pixel, center=ObjectCenter(x_m=1e-7, y_m=-3e-7),
                       layer_spacing_m=[5e-6] * (layers - 1)),
        losses=[],
    )


@pytest.mark.parametrize("suffix", [".h5", ".npz"])
def test_a_product_written_by_ptychodus_loads_as_ground_truth_slice_0_and_mode_0(tmp_path: Path, suffix: str) -> None:
    product = _ptychodus_product()
    path = tmp_path / f"product{suffix}"
    (save_product if suffix == ".h5" else NPZProductFileIO().write)(path, product)
    truth = PtychodusProductDataset(filepath=str(path)).load()
    np.testing.assert_array_equal(truth["objectGuess"], product.object_.get_layer(0))
    np.testing.assert_array_equal(truth["probeGuess"], product.probes.get_array()[0, 0])
    checked = _ground_truth(truth)  # the study's own check, unchanged
    assert checked.obj.dtype == checked.probe.dtype == np.complex64
    record = truth["_metadata"]["ptychodus_product"]
    assert record["format"] == ("HDF5" if suffix == ".h5" else "NPZ")
    assert record["name"] == "beamline sample" and record["comments"] == "from ptychodus"
    assert record["object_shape_in_file"] == [2, 160, 150] and record["object_layers_in_file"] == 2
    assert record["object_taken"].startswith("layer 0") and record["probe_taken"] == "OPR mode 0, incoherent mode 0"
    assert record["pixel_size_m"] == {"height": 1e-8, "width": 1e-8}
    assert record["object_center_m"] == {"x": 1e-7, "y": -3e-7}
    assert record["n_probe_positions"] == 7 and record["probe_positions_used"] is False
    assert record["photon_energy_eV"] == 8000.0 and record["detector_object_distance_m"] == 1.5


def _rewrite(path: Path, change: Any) -> None:
    with h5py.File(path, "r+") as h5:
        change(h5)


def _npz_message(field: str, value: np.ndarray, tmp_path: Path) -> str:
    """The error the same defect gets through today's PtychoPINN NPZ route."""
    good = _ptychodus_product()
    arrays = {"objectGuess": good.object_.get_layer(0), "probeGuess": good.probes.get_array()[0, 0], field: value}
    NPZDataset(filepath=str(tmp_path / "pinn.npz")).save(arrays)
    with pytest.raises(InputDataError) as error:
        _ground_truth(NPZDataset(filepath=str(tmp_path / "pinn.npz")).load())
    return str(error.value)


@pytest.mark.parametrize(("field", "bad"), [
    ("object", lambda obj, probe: (np.abs(obj), probe)),                         # real dtype
    ("object", lambda obj, probe: (obj[:, :40, :], probe)),                      # smaller than 2N
    ("object", lambda obj, probe: (np.where(np.arange(obj.shape[-1]) == 3, np.nan, obj).astype(obj.dtype), probe)),
    ("probe", lambda obj, probe: (obj, probe[..., :N - 2, :])),                  # not N × N
])
def test_bad_arrays_get_the_same_errors_as_a_ptychopinn_npz(tmp_path: Path, field: str, bad: Any) -> None:
    product = _ptychodus_product()
    obj, probe = bad(product.object_.get_array(), product.probes.get_array())
    path = tmp_path / "bad.h5"
    save_product(path, product)

    def replace(h5: h5py.File) -> None:
        attrs = dict(h5[field].attrs)
        del h5[field]
        h5.create_dataset(field, data=obj if field == "object" else probe)
        h5[field].attrs.update(attrs)

    _rewrite(path, replace)
    with pytest.raises(InputDataError) as error:
        _ground_truth(PtychodusProductDataset(filepath=str(path)).load())
    taken = obj[0] if field == "object" else probe[0, 0]
    assert str(error.value) == _npz_message("objectGuess" if field == "object" else "probeGuess", taken, tmp_path)


def test_bad_product_files_are_refused_naming_the_file_field_expected_and_found(tmp_path: Path) -> None:
    path = tmp_path / "product.h5"
    save_product(path, _ptychodus_product())
    _rewrite(path, lambda h5: h5.__delitem__("object"))
    with pytest.raises(DatasetError, match=r"ptychodus product '.*product\.h5'.*field 'object': expected the product's "
                                           r"object array \(layers, H, W\) complex; found missing"):
        PtychodusProductDataset(filepath=str(path)).load()

    save_product(path, _ptychodus_product())
    _rewrite(path, lambda h5: h5["object"].attrs.__delitem__("pixel_width_m"))
    with pytest.raises(DatasetError, match=r"field 'object.attrs\['pixel_width_m'\]': expected the object's pixel size"):
        PtychodusProductDataset(filepath=str(path)).load()

    save_product(path, _ptychodus_product(probe_pixel=2e-8))
    with pytest.raises(DatasetError, match=r"field 'probe.attrs\['pixel_height_m'\], probe.attrs\['pixel_width_m'\]': "
                                           r"expected the object's pixel size 1e-08 × 1e-08 m .*found 2e-08 × 2e-08 m"):
        PtychodusProductDataset(filepath=str(path)).load()

    path.write_bytes(b"PK\x03\x04 not hdf5")
    with pytest.raises(DatasetError, match=r"not an HDF5 file \(13 bytes without the HDF5 signature"):
        PtychodusProductDataset(filepath=str(path)).load()

    npz = tmp_path / "product.npz"
    NPZProductFileIO().write(npz, _ptychodus_product())
    with np.load(npz) as archive:
        arrays = {key: archive[key] for key in archive.files if key != "object_pixel_height_m"}
    np.savez(npz, **arrays)
    with pytest.raises(DatasetError, match=r"field 'object_pixel_height_m': expected the object's pixel size"):
        PtychodusProductDataset(filepath=str(npz)).load()

    with pytest.raises(DatasetError, match=r"must end in \.h5, \.hdf5, \.npz .*found '\.tif'"):
        PtychodusProductDataset(filepath=str(tmp_path / "product.tif"))
    with pytest.raises(DatasetError, match="read-only"):
        PtychodusProductDataset(filepath=str(path)).save({})


def test_export_parameters_are_checked_with_the_others() -> None:
    from fly64_kedro.parameters import ParameterError, validate_parameters

    with pytest.raises(ParameterError, match=r"export.pixel_size_m: Input should be greater than 0 \(got -1.0\)"):
        validate_parameters({**RAW, "export": {**RAW["export"], "pixel_size_m": -1.0}})
    with pytest.raises(ParameterError, match=r"export.pixel_size: Extra inputs are not permitted"):
        validate_parameters({**RAW, "export": {**RAW["export"], "pixel_size": 1e-8}})
    assert EXPORT.detector_distance_m(64) == pytest.approx(0.3871, rel=1e-3)  # 10 nm, 75 µm, 10 keV at N = 64
