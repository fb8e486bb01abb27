"""MNIST-1D (Greydanus & Kobak, 2020, https://arxiv.org/abs/2011.14439): digits as 40-point curves.

The PyPI package ``mnist1d`` rebuilds the paper's exact dataset offline from its templates and
seed (``make_dataset(get_dataset_args())``: 4,000 train / 1,000 test), so no download is ever
needed. Its classic table (logistic 32 %, MLP 68 %, CNN 94 %, GRU 91 %) shows spatial priors
mattering on a problem that trains in seconds. Recipes: mnist1d_paper, mnist1d_cnn.

Register these with ``import torchdojo.data.mnist1d`` (``torchdojo.data`` does it).
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

import numpy as np
import torch

from torchdojo.data.arrays import ArrayDataset
from torchdojo.data.registry import register_dataset

log = logging.getLogger(__name__)

MNIST1D_CLASSES = [str(i) for i in range(10)]
PAPER_SAMPLES = 5000  # the paper's 4,000 / 1,000 split


@cache
def _build(num_samples: int, seed: int) -> dict[str, np.ndarray]:
    """The generated arrays (x: (N, 40) float64, y: (N,)), cached for the process."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as err:
        raise ImportError(
            "MNIST-1D needs the mnist1d package: pip install mnist1d (it builds the data "
            "offline; nothing is downloaded)"
        ) from err
    args = get_dataset_args()
    args.num_samples, args.seed = num_samples, seed
    data = make_dataset(args)
    return {k: np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test")}


def mnist1d_arrays(split: str, *, num_samples: int = PAPER_SAMPLES, seed: int = 42) -> ArrayDataset:
    """MNIST-1D's ``split`` as an ArrayDataset with x: (N, 1, 40) float32, y: (N,) int64.

    Args:
        split: ``"train"`` or ``"test"``.
        num_samples: Train + test samples (80/20 split); 5000 with seed 42 is the paper's set.
        seed: The generator's seed.
    """
    data = _build(num_samples, seed)
    x, y = (data["x"], data["y"]) if split == "train" else (data["x_test"], data["y_test"])
    paper = num_samples == PAPER_SAMPLES and seed == 42
    source = f"MNIST-1D {split} ({len(y)} curves, {'paper set' if paper else f'seed {seed}'})"
    return ArrayDataset(
        torch.from_numpy(x.astype(np.float32)).unsqueeze(1),  # (N, 1, 40)
        torch.from_numpy(y.astype(np.int64)),
        list(MNIST1D_CLASSES),
        f"{source}, generated offline by the mnist1d package",
    )


@register_dataset("mnist1d")
def _mnist1d(split: str, *, root: str | Path | None = None) -> ArrayDataset:
    """The paper's MNIST-1D (4,000 train / 1,000 test); ``root`` is unused (generated)."""
    return mnist1d_arrays(split)


@register_dataset("mnist1d-tiny")
def _mnist1d_tiny(split: str, *, root: str | Path | None = None) -> ArrayDataset:
    """500 MNIST-1D curves (400 / 100), generated in a fraction of a second, for smoke runs."""
    return mnist1d_arrays(split, num_samples=500, seed=0)
