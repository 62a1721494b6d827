"""Project datasets: NPZ arrays with JSON metadata, torch checkpoints, ptychodus product files."""

from fly64_kedro.datasets.npz_dataset import NPZDataset, ObjectNPZDataset
from fly64_kedro.datasets.ptychodus_product import PtychodusExportDataset, PtychodusProductDataset
from fly64_kedro.datasets.torch_checkpoint import TorchCheckpointDataset

__all__ = ["NPZDataset", "ObjectNPZDataset", "PtychodusExportDataset", "PtychodusProductDataset",
           "TorchCheckpointDataset"]
