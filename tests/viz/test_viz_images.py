"""image_grid, filters and feature maps produce the expected panels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from torchdojo.viz import feature_maps_figure, filters_figure, image_grid, save_figure


def test_image_grid_layout_and_denormalization(tmp_path) -> None:
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.2, 0.2]
    images = torch.zeros(10, 3, 8, 6)  # normalized zeros -> the mean colour
    fig = image_grid(images, titles=[f"t{i}" for i in range(10)], mean=mean, std=std, ncols=4)
    assert len(fig.axes) == 10
    rows, cols = fig.axes[0].get_subplotspec().get_gridspec().get_geometry()
    assert (rows, cols) == (3, 4)
    shown = fig.axes[0].get_images()[0].get_array()
    assert shown.shape == (8, 6, 3)
    np.testing.assert_allclose(shown[0, 0], mean, atol=1e-6)
    assert fig.axes[9].get_title() == "t9"
    path = save_figure(fig, tmp_path / "grid.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_image_grid_uint8_gray_and_errors() -> None:
    images = torch.full((3, 1, 5, 5), 255, dtype=torch.uint8)
    fig = image_grid(images, ncols=8)
    assert len(fig.axes) == 3
    assert fig.axes[0].get_images()[0].get_array().shape == (5, 5)
    assert float(fig.axes[0].get_images()[0].get_array().max()) == 1.0
    with pytest.raises(ValueError, match="B, C, H, W"):
        image_grid(torch.zeros(3, 5, 5))
    with pytest.raises(ValueError, match="titles"):
        image_grid(images, titles=["a"])


def test_filters_and_feature_maps() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 3))
    fig = filters_figure(model[0].weight)
    assert len(fig.axes) == 6
    assert fig.axes[0].get_images()[0].get_array().shape == (3, 3, 3)
    model.train()
    fig = feature_maps_figure(model, model[1], torch.randn(2, 3, 9, 9))
    assert len(fig.axes) == 6 and model.training  # mode restored
    assert fig.axes[0].get_images()[0].get_array().shape == (9, 9)
    assert not model[1]._forward_hooks  # hook removed
