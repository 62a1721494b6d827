"""Project datasets: NPZ arrays with JSON metadata, torch checkpoints."""

from fly64_kedro.datasets.npz_dataset import NPZDataset, ObjectNPZDataset
from fly64_kedro.datasets.torch_checkpoint import TorchCheckpointDataset

__all__ = ["NPZDataset", "ObjectNPZDataset", "TorchCheckpointDataset"]
