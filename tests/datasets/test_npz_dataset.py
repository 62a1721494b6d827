"""NPZDataset: round trips, versions, fsspec, atomic saves, refusal of pickles, clear errors, previews."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any, ClassVar, Self

import fsspec
import matplotlib.image
import numpy as np
import pytest
from fsspec.implementations.local import LocalFileSystem
from kedro.io.core import DatasetError, Version

from fly64_kedro.datasets import NPZDataset, ObjectNPZDataset
from fly64_kedro.provenance import LOADED_FROM_KEY


def payload() -> dict:
    rng = np.random.default_rng(0)
    return {
        "diffraction": rng.random((3, 8, 8), dtype=np.float32),
        "xcoords": rng.random(3) * 100,
        "probeGuess": (rng.standard_normal((8, 8)) + 1j * rng.standard_normal((8, 8))).astype(np.complex64),
        "scan_index": np.arange(3),
        "counts32": np.arange(6, dtype=np.int32).reshape(2, 3),
        "mask": np.array([True, False, True]),
        "intensity_scale": np.array(0.125, dtype=np.float64),
        "_metadata": {"dose": 1000.0, "N": 8, "nested": {"split": "train", "list": [1, 2.5, None]}},
    }


def assert_same_payload(loaded: dict, saved: dict) -> None:
    assert set(loaded) == set(saved)
    for key, value in saved.items():
        if key == "_metadata":
            metadata = {k: v for k, v in loaded[key].items() if k != LOADED_FROM_KEY}
            assert metadata == value
        else:
            assert loaded[key].dtype == value.dtype, key
            assert loaded[key].shape == value.shape, key
            np.testing.assert_array_equal(loaded[key], value)


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_round_trip_of_every_dtype_and_metadata(tmp_path: Path) -> None:
    dataset = NPZDataset(filepath=str(tmp_path / "data.npz"))
    assert not dataset.exists()
    dataset.save(payload())
    assert dataset.exists()
    loaded = dataset.load()
    assert_same_payload(loaded, payload())
    assert loaded["_metadata"][LOADED_FROM_KEY] == {"path": str(tmp_path / "data.npz"), "version": None}


def test_file_is_plain_npz_loadable_without_pickle(tmp_path: Path) -> None:
    NPZDataset(filepath=str(tmp_path / "data.npz")).save(payload())
    with np.load(tmp_path / "data.npz", allow_pickle=False) as archive:
        assert json.loads(str(archive["_metadata"]))["nested"]["split"] == "train"
        np.testing.assert_array_equal(archive["probeGuess"], payload()["probeGuess"])


def test_loaded_from_is_not_written_back(tmp_path: Path) -> None:
    first = NPZDataset(filepath=str(tmp_path / "a.npz"))
    first.save(payload())
    second = NPZDataset(filepath=str(tmp_path / "b.npz"))
    second.save(first.load())
    loaded = second.load()
    assert loaded["_metadata"][LOADED_FROM_KEY]["path"].endswith("b.npz")
    assert_same_payload(loaded, payload())


def test_two_saves_make_two_versions_and_each_loads(tmp_path: Path) -> None:
    path = tmp_path / "versioned.npz"
    older, newer = "2024-01-01T00.00.00.000Z", "2024-01-02T00.00.00.000Z"
    first, second = payload(), payload()
    second["xcoords"] = second["xcoords"] + 1.0
    second["_metadata"] = {"run": 2}
    NPZDataset(filepath=str(path), version=Version(None, older)).save(first)
    NPZDataset(filepath=str(path), version=Version(None, newer)).save(second)

    assert sorted(p.name for p in path.iterdir()) == [older, newer]
    assert (path / older / "versioned.npz").is_file() and (path / newer / "versioned.npz").is_file()
    latest = NPZDataset(filepath=str(path), version=Version(None, None)).load()
    assert_same_payload(latest, second)
    assert latest["_metadata"][LOADED_FROM_KEY]["version"] == newer
    pinned = NPZDataset(filepath=str(path), version=Version(older, None)).load()
    assert_same_payload(pinned, first)
    assert pinned["_metadata"][LOADED_FROM_KEY]["version"] == older


def test_saving_an_existing_version_is_refused(tmp_path: Path) -> None:
    version = Version(None, "2024-01-01T00.00.00.000Z")
    NPZDataset(filepath=str(tmp_path / "v.npz"), version=version).save(payload())
    with pytest.raises(DatasetError, match="must not exist if versioning is enabled"):
        NPZDataset(filepath=str(tmp_path / "v.npz"), version=version).save(payload())


def test_memory_filesystem_round_trip_and_versions() -> None:
    fs = fsspec.filesystem("memory")
    root = "memory:///fly64_npz_test"  # memory://name/… would make 'name' a host, as for any URL
    try:
        plain = NPZDataset(filepath=f"{root}/plain.npz")
        plain.save(payload())
        assert_same_payload(plain.load(), payload())
        for save_version in ("2024-01-01T00.00.00.000Z", "2024-01-02T00.00.00.000Z"):
            NPZDataset(filepath=f"{root}/v.npz", version=Version(None, save_version)).save(payload())
        assert len(fs.ls("/fly64_npz_test/v.npz")) == 2
        latest = NPZDataset(filepath=f"{root}/v.npz", version=Version(None, None)).load()
        assert latest["_metadata"][LOADED_FROM_KEY]["version"] == "2024-01-02T00.00.00.000Z"
        assert not [p for p in fs.find("/fly64_npz_test") if p.endswith(".partial")]
    finally:
        fs.rm("/fly64_npz_test", recursive=True)


class HalfWriteFileSystem(LocalFileSystem):
    """A local filesystem whose writes fail after half of the bytes reached the disk."""

    protocol = "halfwrite"
    written: ClassVar[list[str]] = []

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        handle = super()._open(path, mode=mode, **kwargs)
        if "w" not in mode:
            return handle
        written = self.written

        class HalfWriter:
            def write(self, data: bytes) -> int:
                handle.write(data[: len(data) // 2])
                handle.flush()
                written.append(path)
                raise OSError("injected failure: device full half-way through the write")

            def close(self) -> None:
                handle.close()

            def __enter__(self) -> Self:
                return self

            def __exit__(self, *exc: object) -> None:
                handle.close()

        return HalfWriter()


@pytest.mark.parametrize("versioned", [False, True])
def test_save_failing_half_way_leaves_nothing(tmp_path: Path, versioned: bool) -> None:
    fsspec.register_implementation("halfwrite", HalfWriteFileSystem, clobber=True)
    HalfWriteFileSystem.written.clear()
    version = Version(None, "2024-01-01T00.00.00.000Z") if versioned else None
    dataset = NPZDataset(filepath=f"halfwrite://{tmp_path}/out/data.npz", version=version)
    with pytest.raises(DatasetError, match="injected failure"):
        dataset.save(payload())
    assert HalfWriteFileSystem.written, "the injected writer never ran: the test would prove nothing"
    assert all_files(tmp_path) == []
    # no empty version folder either: a later load must not see a phantom version
    assert not (tmp_path / "out" / "data.npz").exists()
    assert not dataset.exists()


def test_object_array_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    bad = payload()
    bad["ragged"] = np.array([np.zeros(2), np.zeros(3)], dtype=object)
    dataset = NPZDataset(filepath=str(tmp_path / "sub" / "data.npz"))
    with pytest.raises(DatasetError, match=r"field 'ragged' has dtype object"):
        dataset.save(bad)
    assert all_files(tmp_path) == []


def test_unserialisable_metadata_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    bad = payload()
    bad["_metadata"] = {"scale": float("nan")}
    with pytest.raises(DatasetError, match="_metadata' must be JSON-serialisable"):
        NPZDataset(filepath=str(tmp_path / "data.npz")).save(bad)
    assert all_files(tmp_path) == []


class _Explodes:
    """Unpickling this creates a marker file: proof that a load unpickled something."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def test_pickled_metadata_is_refused_and_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled.marker"
    path = tmp_path / "pickled.npz"
    np.savez(path, xcoords=np.arange(3.0), _metadata=np.array([_Explodes(marker)], dtype=object))
    with pytest.raises(DatasetError) as info:
        NPZDataset(filepath=str(path)).load()
    message = str(info.value)
    assert "'_metadata'" in message and "pickled" in message and "refusing to unpickle" in message
    assert not marker.exists()


def test_missing_file_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.npz"
    with pytest.raises(DatasetError, match=rf"NPZ dataset '{path}': file not found"):
        NPZDataset(filepath=str(path)).load()
    with pytest.raises(DatasetError, match="Did not find any versions"):
        NPZDataset(filepath=str(path), version=Version(None, None)).load()


def test_missing_required_key_gives_a_clear_error(tmp_path: Path) -> None:
    path = str(tmp_path / "data.npz")
    NPZDataset(filepath=path).save({"xcoords": np.arange(3.0)})
    with pytest.raises(DatasetError) as info:
        NPZDataset(filepath=path, required_keys=["xcoords", "diffraction"]).load()
    message = str(info.value)
    assert "missing required field(s) ['diffraction']" in message and "found ['xcoords']" in message
    with pytest.raises(DatasetError, match=r"missing required field\(s\) \['diffraction'\]"):
        NPZDataset(filepath=str(tmp_path / "other.npz"), required_keys=["diffraction"]).save({"x": np.zeros(1)})
    assert not (tmp_path / "other.npz").exists()


def test_json_preview_lists_shapes_dtypes_and_metadata(tmp_path: Path) -> None:
    dataset = NPZDataset(filepath=str(tmp_path / "data.npz"))
    dataset.save(payload())
    preview = json.loads(dataset.preview())
    assert preview["arrays"]["diffraction"] == {"shape": [3, 8, 8], "dtype": "float32"}
    assert preview["arrays"]["probeGuess"] == {"shape": [8, 8], "dtype": "complex64"}
    assert preview["arrays"]["intensity_scale"] == {"shape": [], "dtype": "float64"}
    assert preview["metadata"]["dose"] == 1000.0


def test_object_dataset_previews_a_png_of_the_object(tmp_path: Path) -> None:
    yy, xx = np.mgrid[:32, :48]
    obj = (1 + 0.5 * np.sin(xx / 3)) * np.exp(1j * yy / 10)
    dataset = ObjectNPZDataset(filepath=str(tmp_path / "object.npz"), image_key="object")
    dataset.save({"object": obj.astype(np.complex64), "canvas_origin_yx": np.zeros(2)})
    png = base64.b64decode(dataset.preview())
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert image.ndim == 3 and image.shape[1] > image.shape[0] > 100  # amplitude and phase side by side
    assert image[..., :3].std() > 0.05  # not a blank picture
