"""Lung CT models: the 3-D CNN that tells nodules from other candidates, and the 2-D U-Net input.

The nodule classifier follows *Deep Learning with PyTorch* (Stevens, Antiga & Viehmann, 2020;
seed ch11 ``LunaModel``): a batch-norm "tail" that normalizes the raw HU chip, four blocks of
two 3x3x3 convs and a 2x max-pool, and a linear head. Modernised: each conv is followed by a
batch norm (the book has none, and trains slowly without its tail), and the head reads a global
average pool instead of a flattened 2x3x3 grid, so any chip size works (the book's is fixed to
32x48x48). The same network, retrained on true nodules only, scores malignancy.

Segmentation runs on 2-D slices with neighbouring slices as channels (the book's ch13):
``unet`` from :mod:`torchdojo.models.segmentation` with ``in_channels = 2 * context + 1`` and
one output channel (nodule logit); :func:`slice_unet` builds it.
Lesson: lessons/27_honest_metrics.py. Recipes: nodule-classifier, nodule-segmentation,
nodule-malignancy, lung-ct-end-to-end.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from torchdojo.models.registry import register_model
from torchdojo.models.segmentation import UNet

CHANNELS_LAST = torch.channels_last_3d  # (B, D, H, W, C) in memory; shapes unchanged


class LunaBlock(nn.Sequential):
    """Two 3x3x3 conv + BN + ReLU, then a 2x max-pool: one stage of :class:`LunaModel`."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv3d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(2),
        )


class LunaModel(nn.Module):
    """The book's nodule classifier: BN tail, four :class:`LunaBlock` stages, linear head.

    Taught in lessons/27_honest_metrics.py.

    Args:
        in_channels: Channels of the chip (1: HU).
        num_classes: Output logits (2: not nodule / nodule, or benign / malignant).
        width: Channels of the first stage; each stage doubles it.
    """

    def __init__(self, *, in_channels: int, num_classes: int, width: int) -> None:
        super().__init__()
        widths = [in_channels] + [width * 2**i for i in range(4)]
        self.tail = nn.BatchNorm3d(in_channels)
        self.blocks = nn.Sequential(*(LunaBlock(widths[i], widths[i + 1]) for i in range(4)))
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.head = nn.Linear(widths[-1], num_classes)
        self.to(memory_format=CHANNELS_LAST)  # conv weights channels-last: ~2x faster on CPU

    def forward(self, x: Tensor) -> Tensor:
        x = self.tail(x.contiguous(memory_format=CHANNELS_LAST))  # (B, C, D, H, W)
        x = self.blocks(x)  # (B, 8 * width, D / 16, H / 16, W / 16)
        x = self.pool(x).flatten(1)  # (B, 8 * width)
        return self.head(x)  # (B, num_classes)


@register_model
def luna_cnn(*, in_channels: int = 1, num_classes: int = 2, width: int = 8) -> LunaModel:
    """The book's LunaModel with batch norm after every conv (about 0.2 M parameters at width 8)."""
    return LunaModel(in_channels=in_channels, num_classes=num_classes, width=width)


def slice_unet(*, context: int = 3, width: int = 8, depth: int = 3) -> UNet:
    """The 2-D U-Net of the segmentation step: ``2 * context + 1`` slices in, one logit out.

    Built through the registered ``unet`` so a saved bundle rebuilds it as
    ``create_model("unet", in_channels=2 * context + 1, num_classes=1, ...)``.
    """
    return UNet(in_channels=2 * context + 1, num_classes=1, width=width, depth=depth)


__all__ = ["LunaBlock", "LunaModel", "luna_cnn", "slice_unet"]
