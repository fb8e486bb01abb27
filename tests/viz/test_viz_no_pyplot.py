"""The library draws without pyplot's global state (safe in servers and threads).

pyplot itself may be imported (torchmetrics imports it), but no figure is ever registered
with it, so nothing leaks and nothing needs ``plt.close``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from torchdojo.viz import (
    GradCAM,
    cam_overlay_figure,
    confusion_matrix_figure,
    decision_boundary_figure,
    feature_maps_figure,
    filters_figure,
    image_grid,
    plot_curves,
    save_figure,
)


def test_no_figure_reaches_pyplot(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x = torch.rand(2, 3, 8, 8)
    figures = [
        image_grid(x),
        filters_figure(net[0].weight),
        feature_maps_figure(net, net[1], x),
        cam_overlay_figure(x, GradCAM(net, net[1])(x)),
        confusion_matrix_figure([0, 1], [1, 1], ["a", "b"]),
        decision_boundary_figure(
            lambda p: p[:, 0] > 0, np.random.rand(5, 2), np.arange(5) % 2, class_names=["a", "b"]
        ),
    ]
    plot_curves([{"split": "val", "step": 1, "loss": 0.5}], tmp_path)
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        assert pyplot.get_fignums() == []
    for i, fig in enumerate(figures):
        assert save_figure(fig, tmp_path / f"{i}.png").stat().st_size > 0
