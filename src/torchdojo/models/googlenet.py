"""GoogLeNet (Inception v1) for 32x32 images (Szegedy et al., 2014,
https://arxiv.org/abs/1409.4842; d2l chapter 8.4).

The Inception block runs 1x1, 3x3, 5x5 convs and a pooled branch side by side and
concatenates them on channels. The nine blocks keep the paper's channel table; the stem is
two 3x3 convs and one pool (32 -> 16) instead of the 224x224 stem, and convs carry batch norm
as in Inception v2 and torchvision. Taught in lessons/12_cnn_zoo.py.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from torchdojo.models.registry import register_model
from torchdojo.nn import ConvBnAct


class Inception(nn.Module):
    """Four parallel branches concatenated on channels: ``c1 + c3[1] + c5[1] + pool_proj``.

    Taught in lessons/12_cnn_zoo.py.

    Args:
        in_channels: Channels of the input.
        c1: Width of the 1x1 branch.
        c3: (reduce, out) widths of the 1x1 -> 3x3 branch.
        c5: (reduce, out) widths of the 1x1 -> 5x5 branch.
        pool_proj: Width of the 1x1 conv after the 3x3 max-pool branch.
    """

    def __init__(
        self, in_channels: int, c1: int, c3: tuple[int, int], c5: tuple[int, int], pool_proj: int
    ) -> None:
        super().__init__()
        self.branch1 = ConvBnAct(in_channels, c1, 1)
        self.branch3 = nn.Sequential(ConvBnAct(in_channels, c3[0], 1), ConvBnAct(c3[0], c3[1], 3))
        self.branch5 = nn.Sequential(ConvBnAct(in_channels, c5[0], 1), ConvBnAct(c5[0], c5[1], 5))
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1), ConvBnAct(in_channels, pool_proj, 1)
        )
        self.out_channels = c1 + c3[1] + c5[1] + pool_proj

    def forward(self, x: Tensor) -> Tensor:
        branches = [self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)]
        return torch.cat(branches, dim=1)  # (B, c1 + c3 + c5 + pool_proj, H, W)


class GoogLeNet(nn.Module):
    """Stem, Inception 3a-3b, pool, 4a-4e, pool, 5a-5b, global pool, dropout, linear.

    Taught in lessons/12_cnn_zoo.py.

    Args:
        in_channels: Channels of the input image.
        num_classes: Number of output logits.
        dropout: Dropout before the linear head (0.4 in the paper).
    """

    def __init__(self, *, in_channels: int = 3, num_classes: int = 10, dropout: float = 0.4):
        super().__init__()
        self.stem = nn.Sequential(
            ConvBnAct(in_channels, 64, 3),  # (B, 64, 32, 32)
            ConvBnAct(64, 192, 3),  # (B, 192, 32, 32)
            nn.MaxPool2d(3, stride=2, padding=1),  # (B, 192, 16, 16)
        )
        self.inception3 = nn.Sequential(
            Inception(192, 64, (96, 128), (16, 32), 32),  # (B, 256, 16, 16)
            Inception(256, 128, (128, 192), (32, 96), 64),  # (B, 480, 16, 16)
            nn.MaxPool2d(3, stride=2, padding=1),  # (B, 480, 8, 8)
        )
        self.inception4 = nn.Sequential(
            Inception(480, 192, (96, 208), (16, 48), 64),  # (B, 512, 8, 8)
            Inception(512, 160, (112, 224), (24, 64), 64),  # (B, 512, 8, 8)
            Inception(512, 128, (128, 256), (24, 64), 64),  # (B, 512, 8, 8)
            Inception(512, 112, (144, 288), (32, 64), 64),  # (B, 528, 8, 8)
            Inception(528, 256, (160, 320), (32, 128), 128),  # (B, 832, 8, 8)
            nn.MaxPool2d(3, stride=2, padding=1),  # (B, 832, 4, 4)
        )
        self.inception5 = nn.Sequential(
            Inception(832, 256, (160, 320), (32, 128), 128),  # (B, 832, 4, 4)
            Inception(832, 384, (192, 384), (48, 128), 128),  # (B, 1024, 4, 4)
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),  # (B, 1024, 1, 1)
            nn.Flatten(),  # (B, 1024)
            nn.Dropout(dropout),
            nn.Linear(1024, num_classes),  # (B, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = self.inception3(x)
        x = self.inception4(x)
        x = self.inception5(x)
        return self.head(x)


@register_model
def googlenet(*, in_channels: int = 3, num_classes: int = 10, dropout: float = 0.4) -> GoogLeNet:
    """GoogLeNet with batch norm for 32x32 inputs (about 6.0 M parameters)."""
    return GoogLeNet(in_channels=in_channels, num_classes=num_classes, dropout=dropout)
