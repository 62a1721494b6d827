"""Torch checkpoint dataset: a dict of tensors and plain values, versioned, atomic, loaded safely.

The payload is a ``dict`` that ``torch.load(weights_only=True)`` can read back: tensors,
``str``/``int``/``float``/``bool``/``None`` and (nested) lists and dicts of them. It is
checked before a byte is written, so a checkpoint that would not load safely is never
saved. Files, versions, fsspec and atomic writes work as for :class:`NPZDataset`.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import torch
from kedro.io.core import DatasetError, get_filepath_str
from kedro_datasets._typing import JSONPreview

from fly64_kedro.datasets.npz_dataset import NPZDataset

_PLAIN = (str, int, float, bool, type(None))


def _check_safe(value: Any, where: str, path: str) -> None:
    """Refuse anything ``weights_only`` loading would reject (arrays, objects, tuples of them…)."""
    if isinstance(value, (torch.Tensor, *_PLAIN)):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str | int):
                raise DatasetError(f"{where}: key {key!r} at '{path}' must be a str or int")
            _check_safe(item, where, f"{path}.{key}")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_safe(item, where, f"{path}[{index}]")
        return
    raise DatasetError(
        f"{where}: '{path}' holds a {type(value).__name__}; a checkpoint holds only tensors, "
        "numbers, strings, None and lists/dicts of them (so it loads with weights_only=True)"
    )


class TorchCheckpointDataset(NPZDataset):
    """Versioned torch checkpoint (``torch.save`` of a dict) on any fsspec filesystem.

    ``required_keys`` are top-level keys the checkpoint must hold. Loads map every tensor
    to the CPU with ``torch.load(weights_only=True)``: no pickled code is ever executed.

    Example catalog entry::

        "{dose}.{view}.pinn_model":
          type: fly64_kedro.datasets.TorchCheckpointDataset
          filepath: data/06_models/{dose}/{view}/pinn_model.pt
          required_keys: [format, status, config, state_dict]
          versioned: true
    """

    def _where(self, path: str) -> str:
        return f"torch checkpoint dataset '{path}'"

    def _decode(self, stream: io.BufferedIOBase, where: str) -> dict[str, Any]:
        content = stream.read()
        if not zipfile.is_zipfile(io.BytesIO(content)):
            kind = "empty" if not content else f"{len(content)} bytes without a complete zip directory"
            raise DatasetError(f"{where}: the checkpoint is truncated or corrupt ({kind}); torch.save writes a zip "
                               "archive. Make it again (rerun its training) or load an earlier version.")
        try:
            return torch.load(io.BytesIO(content), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises UnpicklingError, RuntimeError… for unsafe or broken files
            raise DatasetError(f"{where}: cannot be loaded safely (weights_only=True): {exc}") from exc

    def _annotate(self, payload: dict[str, Any], load_path: str) -> dict[str, Any]:
        return payload  # a checkpoint is returned exactly as saved

    def save(self, data: dict[str, Any]) -> None:
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        where = self._where(save_path)
        self._check_required(data, where)
        _check_safe(data, where, "checkpoint")
        buffer = io.BytesIO()
        torch.save(data, buffer)
        self._write_atomically(save_path, buffer.getvalue())
        self._invalidate_cache()

    def preview(self) -> JSONPreview:  # type: ignore[override]
        """Everything but the tensors (which are summarised by shape and dtype), for kedro-viz."""
        def summary(value: Any) -> Any:
            if isinstance(value, torch.Tensor):
                return {"shape": list(value.shape), "dtype": str(value.dtype)}
            if isinstance(value, dict):
                return {str(key): summary(item) for key, item in value.items()}
            if isinstance(value, list | tuple):
                return [summary(item) for item in value]
            return value

        return JSONPreview(json.dumps(summary(self.load())))
