"""Plots of a network's health: per-layer gradient violins and per-layer profiles.

Taught in lessons/07_training_stability.py; drawn by ``torchdojo diagnose`` and the
``deep-mlp-init`` recipe. The functions take plain numbers, so they know nothing of the engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from torchdojo.viz.figures import new_figure

_FLOOR = 1e-30  # log10 of an exact zero gradient is drawn at -30


def gradient_violin_figure(
    names: Sequence[str], gradients: Sequence[torch.Tensor], *, title: str = "gradients per layer"
) -> Figure:
    """One violin of ``log10 |gradient|`` per layer, input side on the left.

    A log scale makes vanishing gradients visible: healthy layers sit at similar heights,
    vanishing ones sink by orders of magnitude layer after layer. Exact zeros (dead units) are
    left out of the violin and counted in the label; an all-zero layer is drawn at 1e-30.

    Args:
        names: Layer names, one per violin.
        gradients: Each layer's gradient values (any shape; flattened).
        title: The figure title.
    """
    if len(names) != len(gradients) or not names:
        raise ValueError(
            f"need one gradient tensor per layer name, got {len(names)} names "
            f"and {len(gradients)} tensors"
        )
    data, labels = [], []
    for name, g in zip(names, gradients, strict=True):
        values = g.detach().flatten().float().abs().cpu().numpy()
        nonzero = values[values > 0]
        data.append(np.log10(nonzero) if nonzero.size else np.log10([_FLOOR]))
        zeros = 1.0 - nonzero.size / max(values.size, 1)
        labels.append(f"{name} ({zeros:.0%} zero)" if zeros >= 0.01 else name)
    fig = new_figure(width=max(5.0, 0.45 * len(names) + 2.0), height=4.0)
    ax = fig.add_subplot()
    parts = ax.violinplot(data, showmedians=True, widths=0.8)
    for body in parts["bodies"]:  # type: ignore[attr-defined]
        body.set_alpha(0.6)
    ax.set_xticks(range(1, len(names) + 1), labels, rotation=60, ha="right", fontsize=7)
    ax.set(ylabel="log10 |gradient|", title=title)
    ax.grid(axis="y", alpha=0.3)
    return fig


def layer_profile_figure(
    series: Mapping[str, Sequence[float]],
    *,
    ylabel: str,
    title: str,
    log: bool = True,
) -> Figure:
    """One line per entry of ``series`` over the layer index (e.g. activation std at init
    and after training).

    Args:
        series: Label -> one value per layer.
        ylabel: What the values are.
        title: The figure title.
        log: Use a logarithmic y axis (zeros are drawn at 1e-30).
    """
    if not series:
        raise ValueError("series is empty; pass at least one label -> values")
    fig = new_figure(width=5.5, height=3.8)
    ax = fig.add_subplot()
    for label, values in series.items():
        y = np.asarray(values, dtype=np.float64)
        ax.plot(np.arange(1, len(y) + 1), np.maximum(y, _FLOOR) if log else y, "o-", label=label)
    if log:
        ax.set_yscale("log")
    ax.set(xlabel="layer (input side first)", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
