"""ptychodus product files: the study's reconstructions out, a user's ground truth in.

A ptychodus *product* (``ptychodus.api.product.Product``) is one object, its probe, the
scan positions and the experiment's metadata. ptychodus 1.7 reads and writes it as HDF5
(``ptychodus.api.io.save_product`` / ``load_product``) or as a flat NPZ archive (plugin
``npz_product_file``). This module writes the HDF5 layout of ``save_product`` with h5py
alone, and reads both layouts, so that ptychodus is needed only to look at the files:

===============================  ===========================================================
HDF5 (``save_product``)          NPZ product / in-memory product payload (flat keys)
===============================  ===========================================================
attrs ``name``, ``comments``     ``name``, ``comments`` (str)
attrs ``photon_energy_eV``,      same keys (float; ``far_field`` bool)
``detector_object_distance_m``,
``probe_photon_count``, …,
``far_field``
``object`` (L, H, W) complex     ``object``
``object`` attrs ``pixel_width_m``, ``object_pixel_width_m``, ``object_pixel_height_m``,
``pixel_height_m``, ``center_x_m``, ``object_center_x_m``, ``object_center_y_m`` (m)
``center_y_m``
``object_layer_spacing_m`` (L-1,) ``object_layer_spacing_m``
``probe`` (C, M, N, N) complex   ``probe`` (OPR modes, incoherent modes, N, N)
``probe`` attrs ``pixel_width_m``, ``probe_pixel_width_m``, ``probe_pixel_height_m``
``pixel_height_m``
``probe_position_indexes``,      same keys: positions in metres
``probe_position_x_m``, ``…_y_m``
``loss_epochs``, ``loss_values``  same keys
===============================  ===========================================================

Geometry (ptychodus's ``ObjectGeometry``): object array pixel (i, j) has its centre at
``x = center_x_m + pixel_width_m · (j − (W − 1)/2)`` (likewise y with i and H), and a probe
position in metres maps to the object pixel that the probe array's centre pixel (N/2) sits
on — the PtychoPINN ``xcoords``/``ycoords`` convention, as ptychodus's own PtychoPINN
export computes them.

The project's own metadata (provenance, lineage) travels in an extra file attribute (HDF5)
or key (NPZ) ``fly64_metadata``, a JSON string that ptychodus ignores.
"""

from __future__ import annotations

import base64
import io
import json
import math
import uuid
from pathlib import PurePosixPath
from typing import Any

import h5py
import numpy as np
from kedro.io.core import DatasetError, get_filepath_str
from kedro_datasets._typing import ImagePreview, JSONPreview

from fly64_kedro.datasets.npz_dataset import (
    METADATA_KEY,
    NPZDataset,
    _read_npz,
    complex_image_png,
)
from fly64_kedro.provenance import LOADED_FROM_KEY

FLY64_METADATA = "fly64_metadata"
"""File attribute (HDF5) or key (NPZ) holding the project's metadata as JSON text; ptychodus ignores it."""

HDF5_SUFFIXES = (".h5", ".hdf5")
NPZ_SUFFIXES = (".npz",)

FILE_SCALARS: dict[str, float | bool] = {
    "detector_object_distance_m": math.nan,
    "photon_energy_eV": math.nan,
    "probe_photon_count": 0.0,
    "exposure_time_s": 0.0,
    "mass_attenuation_m2_per_kg": 0.0,
    "tomography_angle_deg": 0.0,
    "focus_object_distance_m": 0.0,
    "tilt_angle_deg": 0.0,
    "far_field": True,
}
"""Scalar metadata of a product (file attributes in HDF5) and the value ptychodus's reader assumes when
absent (NaN: ptychodus requires it, so the writer always has it)."""

OBJECT_ATTRS = {"object_pixel_width_m": "pixel_width_m", "object_pixel_height_m": "pixel_height_m",
                "object_center_x_m": "center_x_m", "object_center_y_m": "center_y_m"}
"""Flat key → attribute of the HDF5 ``object`` dataset."""
PROBE_ATTRS = {"probe_pixel_width_m": "pixel_width_m", "probe_pixel_height_m": "pixel_height_m"}
"""Flat key → attribute of the HDF5 ``probe`` dataset."""
ARRAYS = ("object", "probe", "object_layer_spacing_m", "probe_position_indexes", "probe_position_x_m",
          "probe_position_y_m", "loss_epochs", "loss_values")
"""Datasets of the HDF5 layout (top-level keys of the NPZ layout)."""
REQUIRED_FOR_WRITING = ("name", "comments", "object", "probe", "probe_position_indexes", "probe_position_x_m",
                        "probe_position_y_m", *OBJECT_ATTRS, "detector_object_distance_m", "photon_energy_eV")


def product_format(filepath: str) -> str:
    """'HDF5' or 'NPZ' from the file name's suffix, or a DatasetError naming the suffixes accepted."""
    suffix = PurePosixPath(filepath).suffix.lower()
    if suffix in HDF5_SUFFIXES:
        return "HDF5"
    if suffix in NPZ_SUFFIXES:
        return "NPZ"
    raise DatasetError(f"ptychodus product '{filepath}': the file name must end in "
                       f"{', '.join(HDF5_SUFFIXES + NPZ_SUFFIXES)} (HDF5 or NPZ product); found '{suffix or 'none'}'")


# ---------------------------------------------------------------------------- writing


def _json_text(metadata: Any, where: str) -> str:
    try:
        return json.dumps(metadata, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{where}: field '{METADATA_KEY}' must be JSON-serialisable; {exc}") from exc


def _check_product(product: Any, where: str) -> None:
    """Refuse a product payload that ptychodus could not read back, before a byte is written."""
    if not isinstance(product, dict):
        raise DatasetError(f"{where}: expected a product dict; found {type(product).__name__}")
    missing = [key for key in REQUIRED_FOR_WRITING if key not in product]
    if missing:
        raise DatasetError(f"{where}: missing product field(s) {missing}; found {sorted(product)}")
    for key in ("object", "probe"):
        if not np.iscomplexobj(product[key]):
            raise DatasetError(f"{where}: field '{key}': expected a complex array; found dtype "
                               f"{np.asarray(product[key]).dtype}")
    if np.ndim(product["object"]) != 3 or np.ndim(product["probe"]) != 4:
        raise DatasetError(f"{where}: fields 'object', 'probe': expected shapes (layers, H, W) and (OPR modes, "
                           f"incoherent modes, N, N); found {np.shape(product['object'])}, "
                           f"{np.shape(product['probe'])}")
    sizes = {np.size(product[key]) for key in ("probe_position_indexes", "probe_position_x_m", "probe_position_y_m")}
    if len(sizes) != 1:
        raise DatasetError(f"{where}: fields 'probe_position_indexes', 'probe_position_x_m', 'probe_position_y_m': "
                           f"expected one length; found {[np.size(product[key]) for key in ARRAYS[3:6]]}")


def _array(product: dict[str, Any], key: str) -> np.ndarray:
    defaults = {"object_layer_spacing_m": np.zeros(0), "loss_epochs": np.zeros(0, np.int64),
                "loss_values": np.zeros(0)}
    return np.asarray(product.get(key, defaults.get(key)))


def encode_product_hdf5(product: dict[str, Any], where: str) -> bytes:
    """The bytes of an HDF5 product file in the layout of ptychodus's ``save_product``."""
    _check_product(product, where)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.attrs["name"] = str(product["name"])
        h5.attrs["comments"] = str(product["comments"])
        for key, default in FILE_SCALARS.items():
            value = product.get(key, default)
            h5.attrs[key] = bool(value) if isinstance(default, bool) else float(value)
        for key in ("probe_position_indexes", "probe_position_x_m", "probe_position_y_m"):
            h5.create_dataset(key, data=_array(product, key))
        probe = h5.create_dataset("probe", data=_array(product, "probe"))
        for key, attr in PROBE_ATTRS.items():
            probe.attrs[attr] = float(product.get(key, product[f"object_{attr}"]))
        obj = h5.create_dataset("object", data=_array(product, "object"))
        for key, attr in OBJECT_ATTRS.items():
            obj.attrs[attr] = float(product[key])
        for key in ("object_layer_spacing_m", "loss_epochs", "loss_values"):
            h5.create_dataset(key, data=_array(product, key))
        if METADATA_KEY in product:
            h5.attrs[FLY64_METADATA] = _json_text(product[METADATA_KEY], where)
    return buffer.getvalue()


# ---------------------------------------------------------------------------- reading


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return _text(value.item()) if value.size == 1 else str(value)
    return str(value)


def _read_hdf5(content: bytes, where: str) -> dict[str, Any]:
    """The flat product of an HDF5 product file (arrays as stored, attributes as flat keys)."""
    if not content.startswith(b"\x89HDF\r\n\x1a\n"):
        kind = "an empty file" if not content else f"{len(content)} bytes without the HDF5 signature"
        raise DatasetError(f"{where}: not an HDF5 file ({kind}; truncated, or another format)")
    try:
        h5 = h5py.File(io.BytesIO(content), "r")
    except OSError as exc:
        raise DatasetError(f"{where}: not a readable HDF5 file ({exc})") from exc
    flat: dict[str, Any] = {}
    with h5:
        for key, value in h5.attrs.items():
            if key == FLY64_METADATA:
                flat[METADATA_KEY] = _decode_fly64(_text(value), where)
            elif key in ("name", "comments", "polarization"):
                flat[key] = _text(value)
            else:
                flat[key] = value
        for key in ARRAYS:
            if key not in h5:
                continue
            item = h5[key]
            if not isinstance(item, h5py.Dataset):
                raise DatasetError(f"{where}: field '{key}': expected an HDF5 dataset; found {type(item).__name__}")
            flat[key] = item[()]
            attributes = OBJECT_ATTRS if key == "object" else PROBE_ATTRS if key == "probe" else {}
            for flat_key, attr in attributes.items():
                if attr in item.attrs:
                    flat[flat_key] = item.attrs[attr]
    return flat


def _decode_fly64(text: str, where: str) -> dict[str, Any]:
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{where}: field '{FLY64_METADATA}': expected JSON text; "
                           f"found text that is not ({exc})") from exc
    return metadata if isinstance(metadata, dict) else {"value": metadata}


def read_product(content: bytes, file_format: str, where: str) -> dict[str, Any]:
    """The flat product (keys of the NPZ layout; arrays as stored) of an HDF5 or NPZ product file."""
    if file_format == "HDF5":
        return _read_hdf5(content, where)
    flat = _read_npz(io.BytesIO(content), where)  # refuses pickles; decodes a project '_metadata'
    if FLY64_METADATA in flat:
        flat[METADATA_KEY] = _decode_fly64(_text(flat.pop(FLY64_METADATA)), where)
    for key in ("name", "comments", "polarization"):
        if key in flat:
            flat[key] = _text(flat[key])
    return flat


def _scalar(flat: dict[str, Any], key: str, where: str, field: str, *, strict: bool = False) -> float | None:
    """A scalar of the product, None when absent (or, unless ``strict``, not finite); ``strict``: finite and > 0."""
    if key not in flat:
        return None
    value = np.asarray(flat[key])
    if value.size != 1 or not np.issubdtype(value.dtype, np.number):
        raise DatasetError(f"{where}: field '{field}': expected one number; found {value.dtype} of shape {value.shape}")
    number = float(value.reshape(()))
    if strict and not (math.isfinite(number) and number > 0):
        raise DatasetError(f"{where}: field '{field}': expected a finite number > 0 (metres); found {number}")
    return number if math.isfinite(number) else None


def field_name(key: str, file_format: str) -> str:
    """How a flat key is spelled in the file: an attribute of the HDF5 ``object``/``probe`` dataset, else the key."""
    if file_format == "HDF5":
        for dataset, attributes in (("object", OBJECT_ATTRS), ("probe", PROBE_ATTRS)):
            if key in attributes:
                return f"{dataset}.attrs['{attributes[key]}']"
    return key


def _pixel_size(flat: dict[str, Any], prefix: str, where: str, file_format: str,
                fallback: tuple[float, float] | None) -> tuple[float, float]:
    """(height, width) in metres of the object's or the probe's pixels (the probe's default to the object's)."""
    sizes: list[float] = []
    for axis in ("height", "width"):
        key = f"{prefix}_pixel_{axis}_m"
        value = _scalar(flat, key, where, field_name(key, file_format), strict=True)
        if value is None:
            if fallback is None:
                raise DatasetError(f"{where}: field '{field_name(key, file_format)}': expected the object's pixel "
                                   "size in metres (ptychodus writes it with every product); found missing")
            value = fallback[len(sizes)]
        sizes.append(value)
    return sizes[0], sizes[1]


def product_to_ground_truth(flat: dict[str, Any], where: str, file_format: str) -> dict[str, Any]:
    """The study's ground-truth payload of a product: ``objectGuess`` (H, W), ``probeGuess`` (N, N), ``_metadata``.

    Takes the object's first layer (slice 0 of a multi-slice object) and the probe's first
    mode (OPR mode 0, incoherent mode 0), whole and on the product's own pixel grid (no
    resampling or cropping); the probe must be sampled on the object's grid. The scan
    positions are not used (the study draws its own scan); their number is recorded. dtype,
    shape, finiteness and size are checked afterwards by the ``GroundTruth`` contract, exactly
    as for a PtychoPINN NPZ, so an array of another shape or dtype is passed on unchanged.
    """
    present = sorted(key for key in flat if key != METADATA_KEY)
    for key, expected in (("object", "(layers, H, W) complex"),
                          ("probe", "(OPR modes, incoherent modes, N, N) complex")):
        if key not in flat:
            raise DatasetError(f"{where}: field '{key}': expected the product's {key} array {expected}; "
                               f"found missing (fields: {present})")
    obj, probe = np.asarray(flat["object"]), np.asarray(flat["probe"])
    object_pixel = _pixel_size(flat, "object", where, file_format, None)
    probe_pixel = _pixel_size(flat, "probe", where, file_format, object_pixel)
    if not np.allclose(probe_pixel, object_pixel, rtol=1e-6, atol=0):
        raise DatasetError(
            f"{where}: field '{field_name('probe_pixel_height_m', file_format)}, "
            f"{field_name('probe_pixel_width_m', file_format)}': expected the object's pixel size "
            f"{object_pixel[0]:.6g} × {object_pixel[1]:.6g} m (the study uses one pixel grid for object and probe); "
            f"found {probe_pixel[0]:.6g} × {probe_pixel[1]:.6g} m. Resample the probe onto the object's grid first")
    layered = obj.ndim == 3 and obj.shape[0] >= 1
    object_taken = obj[0] if layered else obj  # any other shape goes on to the GroundTruth contract as it is
    modes = probe.ndim if probe.ndim in (3, 4) and 0 not in probe.shape[:-2] else 2
    probe_taken = probe.reshape(-1, *probe.shape[-2:])[0] if modes > 2 else probe
    n_positions = int(np.size(flat["probe_position_x_m"])) if "probe_position_x_m" in flat else None
    record = {
        "format": file_format,
        "name": flat.get("name", "Unnamed"),
        "comments": flat.get("comments", ""),
        "object_shape_in_file": list(obj.shape),
        "object_taken": "layer 0, whole, on the product's pixel grid" if layered else "the array as stored",
        "object_layers_in_file": int(obj.shape[0]) if layered else 1,
        "probe_shape_in_file": list(probe.shape),
        "probe_taken": {4: "OPR mode 0, incoherent mode 0", 3: "mode 0"}.get(modes, "the array as stored"),
        "pixel_size_m": {"height": object_pixel[0], "width": object_pixel[1]},
        "object_center_m": {axis: _scalar(flat, key, where, field_name(key, file_format))
                            for axis, key in (("x", "object_center_x_m"), ("y", "object_center_y_m"))},
        "photon_energy_eV": _scalar(flat, "photon_energy_eV", where, "photon_energy_eV"),
        "detector_object_distance_m": _scalar(flat, "detector_object_distance_m", where, "detector_object_distance_m"),
        "n_probe_positions": n_positions,
        "probe_positions_used": False,
    }
    exported = (flat.get(METADATA_KEY) or {}).get("lineage")
    if isinstance(exported, dict):  # a product this project exported: say which derivation, but start a new lineage
        record["exported_from"] = {key: exported.get(key) for key in ("dataset", "fingerprint", "run_id")}
    return {"objectGuess": object_taken, "probeGuess": probe_taken, METADATA_KEY: {"ptychodus_product": record}}


# ---------------------------------------------------------------------------- datasets


class PtychodusProductDataset(NPZDataset):
    """A ptychodus product file (HDF5 ``*.h5``/``*.hdf5`` or NPZ ``*.npz``, by extension) read as ground truth.

    ``load()`` returns the payload of a PtychoPINN ground-truth NPZ: ``objectGuess`` (H, W)
    (layer 0 of the object), ``probeGuess`` (N, N) (mode 0 of the probe) and ``_metadata``
    with what was taken from the file (``ptychodus_product``). Read-only: the study writes
    products through ``PtychodusExportDataset``.

    Example catalog entry::

        user_ground_truth:
          type: fly64_kedro.datasets.PtychodusProductDataset
          filepath: data/01_raw/my_product.h5
    """

    def __init__(self, *, filepath: str, **kwargs: Any) -> None:
        self._format = product_format(filepath)
        super().__init__(filepath=filepath, **kwargs)

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "format": self._format}

    def _where(self, path: str) -> str:
        return f"ptychodus product '{path}'"

    def _decode(self, stream: io.BufferedIOBase, where: str) -> dict[str, Any]:
        return product_to_ground_truth(read_product(stream.read(), self._format, where), where, self._format)

    def save(self, data: dict[str, Any]) -> None:
        raise DatasetError(f"{self._where(str(self._filepath))}: read-only (it is read as ground truth); the study "
                           "writes its products through fly64_kedro.datasets.PtychodusExportDataset")

    def preview(self) -> ImagePreview:  # type: ignore[override]
        png = complex_image_png(np.asarray(self.load()["objectGuess"]), "ptychodus object")
        return ImagePreview(base64.b64encode(png).decode("ascii"))


EXPORT_RECORD = "export_record.json"
"""File of an export folder that lists every arm: its product file, or its status and reason."""


class PtychodusExportDataset(NPZDataset):
    """A versioned folder of ptychodus HDF5 products, one per arm, plus ``export_record.json``.

    The payload is a dict ``arm → product`` (a flat product payload, see the module's table)
    or ``arm → {"status", "reason"}`` for an arm that has no reconstruction (skipped or
    failed: no file is written for it), and ``_metadata`` (the cell's provenance and
    lineage, written to the record). Product ``arm`` is written as ``<arm>.h5``. The whole
    folder is written under a temporary name and then renamed, so a crash leaves no partial
    export. ``load()`` returns ``arm → flat product`` (as read back) or the arm's record.

    Example catalog entry::

        "{dose}.{view}.{split}.ptychodus_products":
          type: fly64_kedro.datasets.PtychodusExportDataset
          filepath: data/09_export/{dose}/{view}/{split}/ptychodus
          versioned: true
    """

    def _where(self, path: str) -> str:
        return f"ptychodus export '{path}'"

    def load(self) -> dict[str, Any]:
        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        where = self._where(load_path)
        record_path = f"{load_path}/{EXPORT_RECORD}"
        if not self._fs.exists(record_path):
            raise DatasetError(f"{where}: no {EXPORT_RECORD} (not an export folder, or not written yet)")
        with self._fs.open(record_path, mode="rb") as stream:
            record = json.loads(stream.read())
        payload: dict[str, Any] = {METADATA_KEY: {**record.get(METADATA_KEY, {}),
                                                  LOADED_FROM_KEY: {"path": load_path,
                                                                    "version": self._resolved_load_version}}}
        for arm, entry in record["arms"].items():
            if entry.get("file"):
                with self._fs.open(f"{load_path}/{entry['file']}", mode="rb") as stream:
                    payload[arm] = read_product(stream.read(), "HDF5", f"{where}, file '{entry['file']}'")
            else:
                payload[arm] = {key: entry.get(key) for key in ("status", "reason")}
        return payload

    def save(self, data: dict[str, Any]) -> None:
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        where = self._where(save_path)
        if not isinstance(data, dict):
            raise DatasetError(f"{where}: expected a dict arm → product; found {type(data).__name__}")
        cell_metadata = {key: value for key, value in (data.get(METADATA_KEY) or {}).items() if key != LOADED_FROM_KEY}
        files: dict[str, bytes] = {}
        arms: dict[str, Any] = {}
        for arm, product in data.items():
            if arm == METADATA_KEY:
                continue
            if isinstance(product, dict) and "object" in product:
                name = f"{arm}.h5"
                metadata = {**(product.get(METADATA_KEY) or {}), "export_lineage": cell_metadata.get("lineage")}
                files[name] = encode_product_hdf5({**product, METADATA_KEY: metadata}, f"{where}, arm '{arm}'")
                arms[arm] = {"status": "ok", "reason": None, "file": name, "name": product["name"],
                             "object_shape": list(np.shape(product["object"])),
                             "n_positions": int(np.size(product["probe_position_x_m"])), "bytes": len(files[name])}
            elif isinstance(product, dict) and product.get("status") not in (None, "ok"):
                arms[arm] = {"status": product["status"], "reason": product.get("reason"), "file": None}
            else:
                found = sorted(product) if isinstance(product, dict) else repr(product)
                raise DatasetError(f"{where}: arm '{arm}': expected a product (with 'object') or a record with a "
                                   f"status other than 'ok'; found {found}")
        files[EXPORT_RECORD] = _json_text({METADATA_KEY: cell_metadata, "arms": arms}, where).encode()
        self._write_folder_atomically(save_path, files)
        self._invalidate_cache()

    def _write_folder_atomically(self, save_path: str, files: dict[str, bytes]) -> None:
        """Write every file into a temporary sibling folder, then rename it to ``save_path``."""
        parent = PurePosixPath(save_path).parent
        temporary = f"{parent}/.{PurePosixPath(save_path).name}.{uuid.uuid4().hex}.partial"
        created = []
        folder = parent
        while folder != folder.parent and not self._fs.exists(str(folder)):
            created.append(str(folder))
            folder = folder.parent
        self._fs.makedirs(temporary, exist_ok=True)
        try:
            for name, content in files.items():
                with self._fs.open(f"{temporary}/{name}", mode="wb") as stream:
                    stream.write(content)
            self._fs.mv(temporary, save_path, recursive=True)
        except BaseException:
            if self._fs.exists(temporary):
                self._fs.rm(temporary, recursive=True)
            for folder_path in created:
                try:
                    self._fs.rmdir(folder_path)
                except OSError:
                    break
            raise

    def preview(self) -> JSONPreview:  # type: ignore[override]
        """The export record (every arm: file, name, object shape, positions; or status and reason)."""
        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        with self._fs.open(f"{load_path}/{EXPORT_RECORD}", mode="rb") as stream:
            return JSONPreview(stream.read().decode())
