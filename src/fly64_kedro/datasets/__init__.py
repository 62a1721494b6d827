"""Project datasets: NPZ arrays with JSON metadata (plain, or loaded as stage contracts), torch checkpoints,
ptychodus product files."""

from fly64_kedro.datasets.npz_dataset import (
           ContractDataset,
           NPZDataset,
           ObjectNPZDataset,
)
from fly64_kedro.datasets.ptychodus_product import (
           PtychodusExportDataset,
           PtychodusProductDataset,
)
from fly64_kedro.datasets.torch_checkpoint import TorchCheckpointDataset

__all__ = ["ContractDataset", "NPZDataset", "ObjectNPZDataset", "PtychodusExportDataset", "PtychodusProductDataset",
           "TorchCheckpointDataset"]
