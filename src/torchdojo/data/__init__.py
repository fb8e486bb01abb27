"""Layer 2: datasets — real files, downloads, embedded sets and synthetic twins."""

from torchdojo.data.arrays import ArrayDataset, Normalize
from torchdojo.data.errors import DataError
from torchdojo.data.registry import create_dataset, list_datasets, register_dataset
from torchdojo.data.tabular import load_tabular

__all__ = [
    "ArrayDataset",
    "DataError",
    "Normalize",
    "create_dataset",
    "list_datasets",
    "load_tabular",
    "register_dataset",
]
