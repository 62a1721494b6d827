"""The torch checkpoint dataset: versioned round trip, safe loading, refusal of unsafe payloads."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from kedro.io.core import DatasetError, Version
from pinn_support import one_torch_thread

from fly64_kedro.datasets import TorchCheckpointDataset
from fly64_kedro.pinn.network import (
    PINNConfig,
    build_model,
    from_checkpoint,
    to_checkpoint,
)

REQUIRED = ["format", "status", "config", "state_dict", "metadata"]

pytestmark = pytest.mark.usefixtures(one_torch_thread.__name__)


def _model(gridsize: int = 2) -> torch.nn.Module:
    config = PINNConfig(patch_size=16, gridsize=gridsize, width=4, n_blocks=2, input_scale=0.3, merge_epsilon=1e-3,
                        trainable_intensity_scale=True)
    probe = np.exp(1j * np.linspace(0, 3, 256)).reshape(16, 16).astype(np.complex64)
    model = build_model(config, probe, seed=3, device="cpu")
    with torch.no_grad():
        model.log_amplitude_scale.fill_(0.25)  # as if trained
    return model


def test_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    model = _model()
    dataset = TorchCheckpointDataset(filepath=str(tmp_path / "model.pt"), required_keys=REQUIRED,
                                     version=Version(None, None))
    dataset.save(to_checkpoint(model, {"dose": 1e4, "provenance": [{"stage": "training", "fields": {"n": 3}}]}))
    loaded = from_checkpoint(dataset.load(), "cpu")
    amplitudes = torch.rand(5, 4, 16, 16) * 20
    offsets = torch.randint(-5, 6, (5, 4, 2))
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(amplitudes, offsets), model(amplitudes, offsets), rtol=0, atol=0)
        torch.testing.assert_close(loaded.object_patches(amplitudes), model.object_patches(amplitudes), rtol=0, atol=0)
    assert loaded.config == model.config
    assert dataset.load()["metadata"]["dose"] == 1e4


def test_versions_do_not_overwrite_each_other(tmp_path: Path) -> None:
    path = str(tmp_path / "model.pt")
    for version, scale in (("2026-01-01T00.00.00.000Z", 0.1), ("2026-01-02T00.00.00.000Z", 0.2)):
        model = _model(1)
        with torch.no_grad():
            model.log_amplitude_scale.fill_(scale)
        TorchCheckpointDataset(filepath=path, version=Version(None, version)).save(to_checkpoint(model, {}))
    first = TorchCheckpointDataset(filepath=path, version=Version("2026-01-01T00.00.00.000Z", None)).load()
    latest = TorchCheckpointDataset(filepath=path, version=Version(None, None)).load()
    assert float(first["state_dict"]["log_amplitude_scale"]) == pytest.approx(0.1)
    assert float(latest["state_dict"]["log_amplitude_scale"]) == pytest.approx(0.2)
    assert not list(tmp_path.rglob("*.partial"))                  # atomic: no temporary file left


class _Payload:  # a pickled object that weights_only loading must refuse
    def __reduce__(self) -> tuple:
        return (print, ("executed",))


def test_loading_refuses_pickled_code(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "x", "payload": _Payload()}, path)
    with pytest.raises(DatasetError, match="cannot be loaded safely"):
        TorchCheckpointDataset(filepath=str(path)).load()


def test_saving_refuses_what_would_not_load_safely(tmp_path: Path) -> None:
    dataset = TorchCheckpointDataset(filepath=str(tmp_path / "m.pt"), required_keys=["state_dict"])
    with pytest.raises(DatasetError, match=r"'checkpoint.metadata.array' holds a ndarray"):
        dataset.save({"state_dict": {}, "metadata": {"array": np.zeros(3)}})
    with pytest.raises(DatasetError, match=r"missing required field\(s\) \['state_dict'\]"):
        dataset.save({"metadata": {}})
    assert not (tmp_path / "m.pt").exists()


def test_missing_file_and_preview(tmp_path: Path) -> None:
    dataset = TorchCheckpointDataset(filepath=str(tmp_path / "m.pt"))
    with pytest.raises(DatasetError, match="file not found"):
        dataset.load()
    dataset.save(to_checkpoint(_model(1), {"dose": 10.0}))
    preview = dataset.preview()
    assert '"probe": {"shape": [16, 16], "dtype": "torch.complex64"}' in preview
    assert pickle.dumps(preview)  # plain JSON text
