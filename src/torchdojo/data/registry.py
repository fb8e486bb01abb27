"""The dataset registry: ``create_dataset(name, split=..., root=...)`` -> an ArrayDataset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torchdojo.data import mnist
from torchdojo.data.arrays import ArrayDataset
from torchdojo.utils.registry import Registry

DatasetBuilder = Callable[..., ArrayDataset]
DATASETS: Registry[DatasetBuilder] = Registry("dataset")


def register_dataset(name: str) -> Callable[[DatasetBuilder], DatasetBuilder]:
    """Register ``fn(split, *, root, **kwargs) -> ArrayDataset`` as ``name``."""
    return DATASETS.decorator(name)


def create_dataset(
    name: str, split: str = "train", *, root: str | Path | None = None, **kwargs: Any
) -> ArrayDataset:
    """Build dataset ``name``'s ``split`` ("train" or "test")."""
    if split not in {"train", "test"}:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    _load_all()
    return DATASETS.get(name)(split, root=root, **kwargs)


def list_datasets() -> list[str]:
    """Every registered dataset name."""
    _load_all()
    return DATASETS.names()


def _load_all() -> None:
    """Import every data module once so their ``@register_dataset`` decorators run."""
    import importlib
    import pkgutil

    import torchdojo.data as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"torchdojo.data.{info.name}")


@register_dataset("mnist")
def _mnist(split: str, *, root: str | Path | None = None, download: bool = True) -> ArrayDataset:
    return mnist.resolve_idx_dataset("MNIST", split, root=root, download=download)


@register_dataset("fashion-mnist")
def _fashion(split: str, *, root: str | Path | None = None, download: bool = True) -> ArrayDataset:
    return mnist.resolve_idx_dataset(
        "FashionMNIST", split, root=root, download=download, embedded_fallback=False
    )


@register_dataset("mnist-embedded")
def _mnist_embedded(split: str, *, root: str | Path | None = None) -> ArrayDataset:
    return mnist.embedded_mnist(split)


@register_dataset("mnist-tiny")
def _mnist_tiny(split: str, *, root: str | Path | None = None, n: int = 512) -> ArrayDataset:
    return mnist.synthetic_digits(split, n=n if split == "train" else n // 4)


@register_dataset("digits")
def _digits(split: str, *, root: str | Path | None = None) -> ArrayDataset:
    """scikit-learn's 1,797 8x8 digits (bundled, no network), split 80/20 with a fixed seed."""
    import numpy as np
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        bunch.images, bunch.target, test_size=0.2, random_state=0, stratify=bunch.target
    )
    x, y = (x_tr, y_tr) if split == "train" else (x_te, y_te)
    images = torch.from_numpy((x * 255 / 16).round().astype(np.uint8)).unsqueeze(1)  # (N,1,8,8)
    return ArrayDataset(
        images,
        torch.from_numpy(y.astype(np.int64)),
        [str(i) for i in range(10)],
        f"scikit-learn digits {split}",
        (0.305,),
        (0.385,),
    )
