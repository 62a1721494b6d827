"""NPZ dataset: named numpy arrays plus a JSON ``_metadata`` entry, versioned and atomic.

The payload is a ``dict``: array keys map to ``np.ndarray`` (numeric, bool or complex; never
object arrays) and the optional key ``_metadata`` maps to a JSON-serialisable ``dict``. On
disk ``_metadata`` is a 0-d unicode array holding the JSON text, so files load with
``allow_pickle=False``; a file whose ``_metadata`` is a pickled object is refused.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
import zipfile
from pathlib import PurePosixPath
from typing import Any

import fsspec
import numpy as np
from kedro.io.core import (
    AbstractVersionedDataset,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)
from kedro_datasets._typing import ImagePreview, JSONPreview

from fly64_kedro.contracts import CONTRACTS
from fly64_kedro.datasets.previews import complex_image_png
from fly64_kedro.provenance import LOADED_FROM_KEY

METADATA_KEY = "_metadata"


def _metadata_to_array(metadata: Any, where: str) -> np.ndarray:
    """JSON text of ``metadata`` as a 0-d unicode array (loads without pickle)."""
    if not isinstance(metadata, dict):
        raise DatasetError(f"{where}: field '{METADATA_KEY}' must be a dict; got {type(metadata).__name__}")
    try:
        return np.array(json.dumps(metadata, allow_nan=False, sort_keys=True))
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{where}: field '{METADATA_KEY}' must be JSON-serialisable; {exc}") from exc


def _check_arrays(payload: dict[str, Any], where: str) -> None:
    """Refuse anything but plain numeric arrays, before a byte is written."""
    if not isinstance(payload, dict):
        raise DatasetError(f"{where}: expected a dict of arrays; got {type(payload).__name__}")
    for key, value in payload.items():
        if key == METADATA_KEY:
            continue
        if not isinstance(value, np.ndarray):
            raise DatasetError(f"{where}: field '{key}' must be a numpy array; got {type(value).__name__}")
        if value.dtype.hasobject:
            raise DatasetError(f"{where}: field '{key}' has dtype object; only numeric arrays are stored")


def _open_archive(content: bytes, where: str) -> np.lib.npyio.NpzFile:
    """The NPZ archive in ``content``, or a DatasetError saying the file is not one (empty, truncated, an .npy…)."""
    if not zipfile.is_zipfile(io.BytesIO(content)):
        kind = "an empty file" if not content else f"{len(content)} bytes that are not a complete zip archive"
        raise DatasetError(f"{where}: not an NPZ archive ({kind}; truncated, or another format such as .npy)")
    try:
        return np.load(io.BytesIO(content), allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{where}: not a readable NPZ archive ({type(exc).__name__}: {exc})") from exc


def _decode_metadata(value: np.ndarray, where: str) -> dict[str, Any]:
    try:
        metadata = json.loads(str(value))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{where}: field '{METADATA_KEY}' must be JSON text; it is not ({exc})") from exc
    if not isinstance(metadata, dict):
        raise DatasetError(f"{where}: field '{METADATA_KEY}' must be a JSON object; found {type(metadata).__name__}")
    return metadata


def _read_npz(stream: io.BufferedIOBase, where: str) -> dict[str, Any]:
    """Arrays and decoded metadata from an open NPZ stream (``allow_pickle=False``)."""
    payload: dict[str, Any] = {}
    with _open_archive(stream.read(), where) as archive:
        for key in archive.files:
            try:
                value = archive[key]
            except ValueError as exc:
                raise DatasetError(
                    f"{where}: field '{key}' is a pickled object array; refusing to unpickle "
                    f"(expected numeric arrays and a JSON string for '{METADATA_KEY}')"
                ) from exc
            except (OSError, EOFError, zipfile.BadZipFile) as exc:
                raise DatasetError(f"{where}: field '{key}' cannot be read ({type(exc).__name__}: {exc})") from exc
            payload[key] = _decode_metadata(value, where) if key == METADATA_KEY else value
    return payload


class NPZDataset(AbstractVersionedDataset[dict, dict]):
    """Versioned NPZ file of named arrays with JSON metadata, on any fsspec filesystem.

    Example catalog entry::

        "{dose}.{split}.measurements":
          type: fly64_kedro.datasets.NPZDataset
          filepath: data/03_primary/{dose}/{split}/measurements.npz
          required_keys: [diffraction, xcoords, ycoords]
          versioned: true
    """

    def __init__(
        self,
        *,
        filepath: str,
        required_keys: list[str] | None = None,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(filepath, version)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))
        self._required_keys = list(required_keys or [])
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "protocol": self._protocol,
            "required_keys": self._required_keys,
            "version": self._version,
        }

    @property
    def _resolved_load_version(self) -> str | None:
        """The version string actually loaded (None for unversioned files)."""
        return self.resolve_load_version() if self._version else None

    def _where(self, path: str) -> str:
        return f"NPZ dataset '{path}'"

    def load(self) -> dict[str, Any]:
        return self._load_payload()

    def _load_payload(self) -> dict[str, Any]:
        """The file's arrays and metadata, checked for the required keys and annotated with its version."""
        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        where = self._where(load_path)
        if not self._fs.exists(load_path):
            raise DatasetError(f"{where}: file not found")
        with self._fs.open(load_path, mode="rb") as stream:
            payload = self._decode(stream, where)
        self._check_required(payload, where)
        return self._annotate(payload, load_path)

    def _decode(self, stream: io.BufferedIOBase, where: str) -> dict[str, Any]:
        """The payload of an open file (subclasses store other formats)."""
        return _read_npz(stream, where)

    def _check_required(self, payload: Any, where: str) -> None:
        """Refuse a payload that is not a dict or lacks a required key."""
        if not isinstance(payload, dict):
            raise DatasetError(f"{where}: expected a dict; got {type(payload).__name__}")
        missing = [key for key in self._required_keys if key not in payload]
        if missing:
            raise DatasetError(f"{where}: missing required field(s) {missing}; found {sorted(payload)}")

    def _annotate(self, payload: dict[str, Any], load_path: str) -> dict[str, Any]:
        """Record in ``_metadata`` which file and version was read (for provenance)."""
        metadata = payload.setdefault(METADATA_KEY, {})
        metadata[LOADED_FROM_KEY] = {"path": load_path, "version": self._resolved_load_version}
        return payload

    def save(self, data: dict[str, Any]) -> None:
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        where = self._where(save_path)
        _check_arrays(data, where)
        self._check_required(data, where)
        arrays = {key: value for key, value in data.items() if key != METADATA_KEY}
        if METADATA_KEY in data:
            metadata = {k: v for k, v in data[METADATA_KEY].items() if k != LOADED_FROM_KEY}
            arrays[METADATA_KEY] = _metadata_to_array(metadata, where)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        self._write_atomically(save_path, buffer.getvalue())
        self._invalidate_cache()

    def _write_atomically(self, save_path: str, content: bytes) -> None:
        """Write to a temporary sibling, then rename.

        A failure leaves no partial file and none of the folders this save created (an
        empty version folder would otherwise remain), so nothing of it is left behind.
        """
        parent = PurePosixPath(save_path).parent
        temporary = f"{parent}/.{PurePosixPath(save_path).name}.{uuid.uuid4().hex}.partial"
        created = []  # deepest first
        folder = parent
        while folder != folder.parent and not self._fs.exists(str(folder)):
            created.append(str(folder))
            folder = folder.parent
        self._fs.makedirs(str(parent), exist_ok=True)
        try:
            with self._fs.open(temporary, mode="wb") as stream:
                stream.write(content)
            self._fs.mv(temporary, save_path)
        except BaseException:
            if self._fs.exists(temporary):
                self._fs.rm(temporary)
            for folder_path in created:
                try:
                    self._fs.rmdir(folder_path)
                except OSError:  # not empty: another writer uses it
                    break
            raise

    def _exists(self) -> bool:
        try:
            load_path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return self._fs.exists(load_path)

    def _release(self) -> None:
        super()._release()
        self._invalidate_cache()

    def _invalidate_cache(self) -> None:
        filepath = get_filepath_str(self._filepath, self._protocol)
        self._fs.invalidate_cache(filepath)

    def preview(self) -> JSONPreview:
        """Shapes, dtypes and metadata, for kedro-viz."""
        payload = self._load_payload()
        summary = {
            key: {"shape": list(value.shape), "dtype": str(value.dtype)}
            for key, value in payload.items()
            if key != METADATA_KEY
        }
        return JSONPreview(json.dumps({"arrays": summary, "metadata": payload.get(METADATA_KEY, {})}))


class ObjectNPZDataset(NPZDataset):
    """An NPZDataset holding a complex object image; kedro-viz previews it as a picture.

    ``image_key`` names the 2-D complex array shown (amplitude and phase).
    """

    def __init__(self, *, image_key: str = "object", **kwargs: Any) -> None:
        self._image_key = image_key
        super().__init__(**kwargs)

    def preview(self) -> ImagePreview:  # type: ignore[override]
        payload = self._load_payload()
        image = np.asarray(payload[self._image_key])
        image = image[0] if image.ndim == 3 else image
        if image.size == 0:  # a skipped or failed job writes an empty object
            status = payload.get(METADATA_KEY, {}).get("status", "empty")
            image = np.zeros((8, 8), dtype=np.complex64)
            png = complex_image_png(image, f"{self._image_key} ({status}: no image)")
        else:
            png = complex_image_png(image, self._image_key)
        return ImagePreview(base64.b64encode(png).decode("ascii"))


class ContractDataset(ObjectNPZDataset):
    """An NPZ file that loads as a stage contract (``fly64_kedro.contracts``), checked once, here.

    ``contract`` names the class (e.g. ``ScanView``); ``load`` returns that value and refuses
    a file that does not satisfy it, naming the file, the field, what was expected and what
    was found; ``save`` writes its payload. ``image_key`` (optional) names the complex image
    kedro-viz shows; without it the preview lists shapes, dtypes and metadata.

    Example catalog entry::

        "{dose}.{view}.{split}.scan_view":
          type: fly64_kedro.datasets.ContractDataset
          contract: ScanView
          filepath: ${globals:data_root}/04_feature/{dose}/{view}/{split}/scan_view.npz
          versioned: true
    """

    def __init__(self, *, contract: str, image_key: str | None = None, **kwargs: Any) -> None:
        if contract not in CONTRACTS:
            raise DatasetError(f"unknown contract {contract!r}; known: {sorted(CONTRACTS)}")
        self._contract = CONTRACTS[contract]
        super().__init__(image_key=image_key or "", **kwargs)

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "contract": self._contract.__name__}

    def load(self) -> Any:
        payload = self._load_payload()
        return self._contract.from_payload(payload, get_filepath_str(self._get_load_path(), self._protocol))

    def save(self, data: Any) -> None:
        super().save(data if isinstance(data, dict) else data.to_payload())

    def preview(self) -> ImagePreview | JSONPreview:  # type: ignore[override]
        return super().preview() if self._image_key else NPZDataset.preview(self)
