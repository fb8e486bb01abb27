"""Interpreting a classifier: confusion matrix, most-confused pairs, top-loss examples.

Counts come from torchmetrics' ``MulticlassConfusionMatrix`` (rows = true class,
columns = predicted class).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix

from torchdojo.viz.figures import new_figure

_ANNOTATE_MAX_CLASSES = 20  # beyond this, numbers in cells are unreadable


def confusion_counts(y_true: Any, y_pred: Any, *, num_classes: int) -> Tensor:
    """(num_classes, num_classes) int64 counts; entry [i, j] = samples of class i predicted j.

    Args:
        y_true: True class indices, shape (N,), tensor or array-like.
        y_pred: Predicted class indices, shape (N,); pass ``logits.argmax(1)``, not logits.
        num_classes: Number of classes.
    """
    target = torch.as_tensor(y_true).long().flatten()
    preds = torch.as_tensor(y_pred).long().flatten()
    if target.shape != preds.shape:
        raise ValueError(
            f"y_true has {target.numel()} labels but y_pred has {preds.numel()}; "
            "pass class indices (logits.argmax(1)) for the same samples"
        )
    metric = MulticlassConfusionMatrix(num_classes=num_classes)
    return metric(preds, target).long()


def confusion_matrix_figure(
    y_true: Any, y_pred: Any, class_names: Sequence[str], *, normalize: bool = False
) -> Figure:
    """Heat map of the confusion matrix, rows = true class, columns = predicted class.

    Args:
        y_true: True class indices (N,).
        y_pred: Predicted class indices (N,).
        class_names: One name per class, in index order.
        normalize: Show each row as fractions of that class's samples instead of counts.
    """
    counts = confusion_counts(y_true, y_pred, num_classes=len(class_names)).double()
    if normalize:
        counts = counts / counts.sum(dim=1, keepdim=True).clamp_min(1)
    matrix = counts.numpy()
    k = len(class_names)
    side = min(3.0 + 0.45 * k, 16.0)
    fig = new_figure(width=side + 1.0, height=side)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(range(k), labels=list(class_names), rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), labels=list(class_names), fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    if k <= _ANNOTATE_MAX_CLASSES:
        threshold = matrix.max() / 2
        for (i, j), value in _cells(matrix):
            text = f"{value:.2f}" if normalize else f"{int(value)}"
            color = "white" if value > threshold else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=8)
    return fig


def _cells(matrix: Any) -> list[tuple[tuple[int, int], float]]:
    rows, cols = matrix.shape
    return [((i, j), float(matrix[i, j])) for i in range(rows) for j in range(cols)]


def most_confused_pairs(
    y_true: Any, y_pred: Any, class_names: Sequence[str], k: int = 5
) -> list[tuple[str, str, int]]:
    """The ``k`` most frequent mistakes as ``(true name, predicted name, count)``, largest first.

    Only pairs with at least one mistake are returned; ties keep class-index order.
    """
    counts = confusion_counts(y_true, y_pred, num_classes=len(class_names))
    counts.fill_diagonal_(0)
    flat = counts.flatten()  # (C*C,)
    # Stable sort so equal counts stay in (true, pred) index order.
    order = torch.sort(flat, descending=True, stable=True).indices[:k]
    num_classes = len(class_names)
    pairs = []
    for index in order.tolist():
        count = int(flat[index])
        if count == 0:
            break
        true_idx, pred_idx = divmod(index, num_classes)
        pairs.append((class_names[true_idx], class_names[pred_idx], count))
    return pairs


def top_losses(logits: Tensor, targets: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Indices and cross-entropy losses of the ``k`` worst-predicted samples, worst first.

    Args:
        logits: Model outputs (N, C).
        targets: True class indices (N,).
        k: How many to return (clamped to N).
    """
    if logits.ndim != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(
            f"expected logits (N, C) and targets (N,), got {tuple(logits.shape)} and "
            f"{tuple(targets.shape)}"
        )
    with torch.no_grad():
        losses = F.cross_entropy(logits.float(), targets.long(), reduction="none")  # (N,)
        values, indices = losses.topk(min(k, losses.numel()))
    return indices, values
