"""A small DenseNet (Huang et al., 2016, https://arxiv.org/abs/1608.06993; d2l chapter 8.7).

Each layer of a dense block sees the concatenation of every earlier layer's output; transition
layers (1x1 conv + 2x2 average pool) halve the channels and the resolution between blocks.
This follows d2l's small model (4 blocks of 4 layers, growth rate 32) with a 3x3 stem for
32x32 inputs. Taught in lessons/12_cnn_zoo.py.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from torchdojo.models.registry import register_model


def bn_relu_conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """DenseNet's pre-activation order: BN, ReLU, then conv."""
    return nn.Sequential(
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
    )


class DenseLayer(nn.Module):
    """BN-ReLU-conv3x3 producing ``growth_rate`` new channels, appended to its input.

    Taught in lessons/12_cnn_zoo.py.

    Args:
        in_channels: Channels of the input (everything produced so far in the block).
        growth_rate: Channels this layer adds.
    """

    def __init__(self, in_channels: int, growth_rate: int) -> None:
        super().__init__()
        self.conv = bn_relu_conv(in_channels, growth_rate, 3)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.conv(x)], dim=1)  # (B, C + growth_rate, H, W)


def dense_block(in_channels: int, num_layers: int, growth_rate: int) -> nn.Sequential:
    """``num_layers`` dense layers; output has ``in_channels + num_layers * growth_rate``."""
    return nn.Sequential(
        *(DenseLayer(in_channels + i * growth_rate, growth_rate) for i in range(num_layers))
    )


def transition(in_channels: int, out_channels: int) -> nn.Sequential:
    """1x1 conv to ``out_channels`` then 2x2 average pooling (halves H and W)."""
    return nn.Sequential(bn_relu_conv(in_channels, out_channels, 1), nn.AvgPool2d(2))


class DenseNet(nn.Module):
    """Stem, dense blocks separated by transitions, BN-ReLU, global pool, linear head.

    Taught in lessons/12_cnn_zoo.py.

    Args:
        block_layers: Number of dense layers in each block.
        growth_rate: Channels added by each dense layer.
        in_channels: Channels of the input image.
        num_classes: Number of output logits.
        stem_channels: Channels after the stem conv.
    """

    def __init__(
        self,
        *,
        block_layers: tuple[int, ...] = (4, 4, 4, 4),
        growth_rate: int = 32,
        in_channels: int = 3,
        num_classes: int = 10,
        stem_channels: int = 64,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, stem_channels, 3, padding=1, bias=False)  # (B, 64, 32, 32)
        ]
        channels = stem_channels
        for i, num_layers in enumerate(block_layers):
            layers.append(dense_block(channels, num_layers, growth_rate))
            channels += num_layers * growth_rate
            if i < len(block_layers) - 1:
                layers.append(transition(channels, channels // 2))  # halves C, H and W
                channels //= 2
        self.features = nn.Sequential(*layers)  # (B, 248, 4, 4) with the defaults
        self.head = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),  # (B, C, 1, 1)
            nn.Flatten(),  # (B, C)
            nn.Linear(channels, num_classes),  # (B, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@register_model
def densenet(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    growth_rate: int = 32,
    block_layers: tuple[int, ...] = (4, 4, 4, 4),
) -> DenseNet:
    """d2l's small DenseNet for 32x32 inputs (about 0.7 M parameters)."""
    return DenseNet(
        block_layers=block_layers,
        growth_rate=growth_rate,
        in_channels=in_channels,
        num_classes=num_classes,
    )
