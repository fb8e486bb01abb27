"""Small tabular sets from scikit-learn (bundled, offline), split and standardized.

Used by the logistic-regression and softmax-iris recipes (lessons/04_regression_classification.py).
Registered as datasets too (``create_dataset("iris", "train")``), so a recipe's ``dataset``
field names them like any other set.
"""

from __future__ import annotations

from pathlib import Path

import torch

from torchdojo.data.arrays import ArrayDataset
from torchdojo.data.registry import register_dataset

TABLES = ("breast_cancer", "iris", "iris-binary")


def load_tabular(
    name: str, *, test_size: float = 0.25
) -> tuple[ArrayDataset, ArrayDataset, list[str]]:
    """``"breast_cancer"``, ``"iris"`` or ``"iris-binary"`` (versicolor vs virginica) from
    scikit-learn (bundled, offline), split with a fixed seed and standardized with the training
    mean and std; returns train, test and the feature names."""
    from sklearn.datasets import load_breast_cancer, load_iris
    from sklearn.model_selection import train_test_split

    if name not in TABLES:
        raise ValueError(f"unknown tabular dataset {name!r}; choose {', '.join(TABLES)}")
    loaders = {"breast_cancer": load_breast_cancer, "iris": load_iris, "iris-binary": load_iris}
    bunch = loaders[name]()
    x, y, classes = bunch.data, bunch.target, [str(c) for c in bunch.target_names]
    if name == "iris-binary":  # the two classes that overlap: a real boundary to learn
        keep = y > 0
        x, y, classes = x[keep], y[keep] - 1, classes[1:]
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, random_state=0, stratify=y)
    x_tr, x_te = torch.tensor(x_tr, dtype=torch.float32), torch.tensor(x_te, dtype=torch.float32)
    mean, std = x_tr.mean(0), x_tr.std(0).clamp_min(1e-8)
    source = f"scikit-learn {name} ({len(y_tr)} train / {len(y_te)} test, standardized)"
    return (
        ArrayDataset((x_tr - mean) / std, torch.tensor(y_tr), classes, source),
        ArrayDataset((x_te - mean) / std, torch.tensor(y_te), classes, source),
        [str(f) for f in bunch.feature_names],
    )


def _register(name: str) -> None:
    @register_dataset(name)
    def build(split: str, *, root: str | Path | None = None) -> ArrayDataset:
        train, test, _ = load_tabular(name)
        return train if split == "train" else test

    build.__doc__ = f"scikit-learn {name}, 75/25 stratified split, standardized (bundled)."


for _name in TABLES:
    _register(_name)


__all__ = ["TABLES", "load_tabular"]
