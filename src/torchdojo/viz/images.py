"""Image grids: batches (augmented, top-loss, misclassified), first-layer filters, feature maps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from torchdojo.viz.figures import show_grid


def to_display(
    images: Tensor,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> list[npt.NDArray[Any]]:
    """Turn a batch (B, C, H, W), float or uint8, into displayable arrays in [0, 1].

    Float images are de-normalized with ``x * std + mean`` when given, then clipped to [0, 1];
    uint8 images are divided by 255. One-channel images become (H, W), three/four-channel
    images (H, W, C).
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3, 4):
        raise ValueError(
            f"expected images (B, C, H, W) with C in 1, 3 or 4, got {tuple(images.shape)}; "
            "use images.unsqueeze(0) for a single image"
        )
    x = images.detach().cpu()
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if mean is not None or std is not None:
        channels = x.shape[1]
        m = torch.tensor(mean if mean is not None else [0.0] * channels).view(1, -1, 1, 1)
        s = torch.tensor(std if std is not None else [1.0] * channels).view(1, -1, 1, 1)
        x = x * s + m
    arrays = x.clamp(0.0, 1.0).permute(0, 2, 3, 1).numpy()  # (B, H, W, C)
    return [img[..., 0] if img.shape[-1] == 1 else img for img in arrays]


def image_grid(
    images: Tensor,
    *,
    titles: list[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    ncols: int = 8,
) -> Figure:
    """A grid of images, e.g. an augmented batch, the top-loss or the misclassified examples.

    Args:
        images: (B, C, H, W), float (normalized or in [0, 1]) or uint8.
        titles: One title per image, e.g. ``"pred/true/loss/prob"``.
        mean: Per-channel mean used for normalization, to undo it.
        std: Per-channel std used for normalization, to undo it.
        ncols: Images per row.
    """
    return show_grid(to_display(images, mean=mean, std=std), titles=titles, ncols=ncols)


def _min_max(x: Tensor) -> Tensor:
    """Scale each sample of (N, ...) to [0, 1] independently (constant samples become 0)."""
    flat = x.flatten(1)
    low, high = flat.min(1).values, flat.max(1).values
    shape = (-1,) + (1,) * (x.ndim - 1)
    return (x - low.view(shape)) / (high - low).clamp_min(1e-12).view(shape)


def filters_figure(conv_weight: Tensor, *, max_filters: int = 64) -> Figure:
    """First-layer convolution filters, each scaled to [0, 1] on its own.

    Args:
        conv_weight: (out_channels, in_channels, kH, kW); with 3 input channels filters are
            shown in colour, otherwise their input channels are averaged to grey.
        max_filters: Show at most this many filters.
    """
    if conv_weight.ndim != 4:
        raise ValueError(
            f"expected a conv weight (O, I, kH, kW), got shape {tuple(conv_weight.shape)}"
        )
    w = conv_weight.detach().cpu().float()[:max_filters]
    if w.shape[1] != 3:
        w = w.mean(dim=1, keepdim=True)  # (O, 1, kH, kW)
    w = _min_max(w)
    ncols = math.ceil(math.sqrt(w.shape[0]))
    return show_grid(to_display(w), titles=None, ncols=ncols, panel_inches=0.8)


def feature_maps_figure(
    model: nn.Module, layer: nn.Module, x: Tensor, *, max_maps: int = 32
) -> Figure:
    """The activation maps that ``layer`` produces for the first image of ``x``.

    Args:
        model: The network; it runs once in eval mode under ``no_grad`` (its mode is restored).
        layer: A sub-module of ``model`` whose output is (B, C, H, W).
        x: Input batch (B, C, H, W); only the first sample is shown.
        max_maps: Show at most this many channels.
    """
    captured: list[Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
        model.train(was_training)
    if not captured or not isinstance(captured[0], Tensor) or captured[0].ndim != 4:
        raise ValueError("layer must be called by model.forward and return a (B, C, H, W) tensor")
    maps = _min_max(captured[0][0, :max_maps].float().cpu())  # (C, H, W)
    panels: list[npt.NDArray[Any]] = [np.asarray(m) for m in maps.numpy()]
    titles = [f"ch {i}" for i in range(len(panels))]
    ncols = math.ceil(math.sqrt(len(panels)))
    return show_grid(panels, titles=titles, ncols=ncols, cmap="viridis", panel_inches=1.3)
