"""Layer 2: datasets — real files, downloads, embedded sets and synthetic twins."""

from torchdojo.data.arrays import ArrayDataset, Normalize
from torchdojo.data.registry import create_dataset, list_datasets, register_dataset

__all__ = ["ArrayDataset", "Normalize", "create_dataset", "list_datasets", "register_dataset"]
