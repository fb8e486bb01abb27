"""Decision regions of a 2-D classifier (logistic / softmax regression lessons)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from torchdojo.viz.figures import new_figure

PredictFn = Callable[[npt.NDArray[np.float32]], Any]

_COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"]


def predict_labels(predict_fn: PredictFn, points: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
    """Class indices from ``predict_fn(points)``.

    ``predict_fn`` may return labels (M,), scores (M, K) (argmax taken) or binary
    probabilities (M,) in [0, 1] (thresholded at 0.5), as a numpy array or a tensor.
    """
    out = predict_fn(points)
    if isinstance(out, torch.Tensor):
        out = out.detach().cpu().numpy()
    out = np.asarray(out)
    if out.ndim == 2 and out.shape[1] > 1:
        return out.argmax(axis=1)
    out = out.reshape(-1)
    if np.issubdtype(out.dtype, np.floating) and not np.all(out == np.round(out)):
        return (out > 0.5).astype(np.int64)
    return out.astype(np.int64)


def decision_boundary_figure(
    predict_fn: PredictFn,
    X: npt.NDArray[Any],  # noqa: N803 - X is the conventional name for a design matrix
    y: npt.NDArray[Any],
    *,
    class_names: Sequence[str],
    resolution: int = 200,
    margin: float = 0.1,
) -> Figure:
    """Colour the plane by predicted class and scatter the labelled points on top.

    Args:
        predict_fn: Maps float32 points (M, 2) to labels, scores or binary probabilities.
        X: Points (N, 2).
        y: Their class indices (N,).
        class_names: One name per class.
        resolution: Grid points per axis.
        margin: Padding around the data, as a fraction of its range.
    """
    X, y = np.asarray(X, dtype=np.float32), np.asarray(y).reshape(-1)
    if X.ndim != 2 or X.shape[1] != 2 or len(y) != len(X):
        raise ValueError(f"expected X (N, 2) and y (N,), got {X.shape} and {y.shape}")
    low, high = X.min(axis=0), X.max(axis=0)
    pad = (high - low) * margin + 1e-3
    xs = np.linspace(low[0] - pad[0], high[0] + pad[0], resolution, dtype=np.float32)
    ys = np.linspace(low[1] - pad[1], high[1] + pad[1], resolution, dtype=np.float32)
    grid_x, grid_y = np.meshgrid(xs, ys)  # each (R, R)
    points = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)  # (R*R, 2)
    regions = predict_labels(predict_fn, points).reshape(grid_x.shape)  # (R, R)
    k = len(class_names)
    cmap = ListedColormap([_COLORS[i % len(_COLORS)] for i in range(k)])
    fig = new_figure(width=5.5, height=4.8)
    ax = fig.add_subplot()
    ax.contourf(grid_x, grid_y, regions, levels=np.arange(k + 1) - 0.5, cmap=cmap, alpha=0.3)
    for c, name in enumerate(class_names):
        mask = y == c
        ax.scatter(X[mask, 0], X[mask, 1], s=14, color=cmap(c), edgecolors="k", lw=0.4, label=name)
    ax.set(xlabel="x1", ylabel="x2", title="decision regions")
    ax.legend(loc="best", fontsize=8)
    return fig
