"""Project datasets: NPZ arrays with JSON metadata, torch checkpoints."""

from fly64_kedro.datasets.npz_dataset import NPZDataset, ObjectNPZDataset

__all__ = ["NPZDataset", "ObjectNPZDataset"]
