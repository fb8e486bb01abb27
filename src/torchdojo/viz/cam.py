"""Grad-CAM: where in the image the evidence for a class lies.

Selvaraju et al., 2017, https://arxiv.org/abs/1610.02391. The class score's gradient with
respect to a convolutional layer's activations A (B, C, h, w) is averaged over space into one
weight per channel; the map is ReLU(sum_c weight_c * A_c), upsampled to the input size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from torchdojo.viz.figures import grid_shape, new_figure
from torchdojo.viz.images import to_display


class GradCAM:
    """Grad-CAM over one layer of a classifier.

    A forward hook, attached only during each call, swaps the layer's output for a detached
    copy that requires grad, so the gradient is taken with ``torch.autograd.grad`` against it:
    the model's ``.grad`` fields are never touched and frozen models work too.

    Args:
        model: A classifier returning logits (B, num_classes).
        target_layer: A sub-module of ``model`` whose output is (B, C, h, w), usually the last
            convolutional stage.
    """

    def __init__(self, model: nn.Module, target_layer: nn.Module) -> None:
        self.model = model
        self.target_layer = target_layer
        self._activations: Tensor | None = None

    def _hook(self, _module: nn.Module, _inputs: Any, output: Any) -> Tensor:
        if not isinstance(output, Tensor) or output.ndim != 4:
            raise TypeError("target_layer must return one (B, C, h, w) tensor for Grad-CAM")
        self._activations = output.detach().requires_grad_(True)
        return self._activations.clone()  # a non-leaf, so later in-place ops stay legal

    def __call__(self, x: Tensor, class_idx: int | Sequence[int] | Tensor | None = None) -> Tensor:
        """Class activation maps (B, H, W) in [0, 1], one per image of ``x`` (B, C, H, W).

        Args:
            x: Input batch.
            class_idx: Class to explain: one for all images, one per image, or None for each
                image's predicted class. The model runs in eval mode; its mode is restored.
        """
        logits, activations = self._forward(x)
        index = self._class_index(logits, class_idx)
        score = logits.gather(1, index.view(-1, 1)).sum()
        (grads,) = torch.autograd.grad(score, activations)  # (B, C, h, w)
        weights = grads.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        cam = F.relu((weights * activations.detach()).sum(dim=1, keepdim=True))  # (B, 1, h, w)
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
        cam = cam[:, 0]  # (B, H, W)
        low = cam.flatten(1).min(1).values.view(-1, 1, 1)
        high = cam.flatten(1).max(1).values.view(-1, 1, 1)
        return ((cam - low) / (high - low).clamp_min(1e-12)).detach()

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        handle = self.target_layer.register_forward_hook(self._hook)
        was_training = self.model.training
        self._activations = None
        try:
            self.model.eval()
            with torch.enable_grad():
                logits = self.model(x)
        finally:
            handle.remove()
            self.model.train(was_training)
        if self._activations is None:
            raise ValueError("target_layer was not called by model.forward; pick one of its layers")
        if logits.ndim != 2:
            raise ValueError(
                f"model must return logits (B, num_classes), got {tuple(logits.shape)}"
            )
        return logits, self._activations

    @staticmethod
    def _class_index(logits: Tensor, class_idx: int | Sequence[int] | Tensor | None) -> Tensor:
        batch, num_classes = logits.shape
        if class_idx is None:
            index = logits.argmax(dim=1)
        else:
            index = torch.as_tensor(class_idx, dtype=torch.long, device=logits.device)
            index = index.expand(batch) if index.ndim == 0 else index
        if index.shape != (batch,) or bool(((index < 0) | (index >= num_classes)).any()):
            raise ValueError(f"class_idx must be one or {batch} indices in [0, {num_classes})")
        return index


def cam_layer(model: nn.Module, x: Tensor) -> nn.Module:
    """The last module that outputs a spatial (B, C, h, w) map with h * w > 1 on input ``x``:
    the layer Grad-CAM reads (its maps are still spatial, and the most semantic)."""
    found: list[nn.Module] = []

    def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, Tensor) and output.ndim == 4 and output.shape[-2:].numel() > 1:
            found.append(module)

    handles = [m.register_forward_hook(hook) for m in model.modules() if m is not model]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    if not found:
        raise ValueError(f"{type(model).__name__} has no spatial layer for Grad-CAM")
    return found[-1]


def cam_overlay_figure(
    images: Tensor,
    cams: Tensor,
    titles: list[str] | None = None,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    alpha: float = 0.45,
    ncols: int = 4,
) -> Figure:
    """Images with their Grad-CAM heat maps laid over them.

    Args:
        images: (B, C, H, W), float (normalized or in [0, 1]) or uint8.
        cams: (B, H, W) maps in [0, 1], e.g. from :class:`GradCAM`.
        titles: One title per image.
        mean: Per-channel normalization mean to undo.
        std: Per-channel normalization std to undo.
        alpha: Opacity of the heat map.
        ncols: Images per row.
    """
    if cams.ndim != 3 or cams.shape[0] != images.shape[0] or cams.shape[1:] != images.shape[2:]:
        raise ValueError(
            f"cams {tuple(cams.shape)} must be (B, H, W) matching images {tuple(images.shape)}"
        )
    if titles is not None and len(titles) != images.shape[0]:
        raise ValueError(f"got {len(titles)} titles for {images.shape[0]} images")
    panels = to_display(images, mean=mean, std=std)
    rows, cols = grid_shape(len(panels), ncols=ncols)
    fig = new_figure(width=cols * 2.2, height=rows * 2.45)
    for i, (panel, cam) in enumerate(zip(panels, cams.detach().cpu().numpy(), strict=True)):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None, vmin=0.0, vmax=1.0)
        ax.imshow(cam, cmap="jet", alpha=alpha, vmin=0.0, vmax=1.0)
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    return fig
