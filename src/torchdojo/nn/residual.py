"""Residual blocks: ResNet's ``BasicBlock`` and MobileNetV2's ``InvertedResidual``.

He et al., 2015 (https://arxiv.org/abs/1512.03385); Sandler et al., 2018
(https://arxiv.org/abs/1801.04381). Taught in lessons/12_cnn_zoo.py.
"""

from __future__ import annotations

from torch import Tensor, nn

from torchdojo.nn.blocks import ConvBnAct, Residual


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus a shortcut; the ResNet-18/34 unit.

    Taught in lessons/12_cnn_zoo.py.

    Args:
        in_channels: Channels of the input.
        out_channels: Channels of the output.
        stride: Stride of the first conv; 2 halves H and W.
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            # Projection shortcut ("option B" of the paper) when the shape changes.
            self.shortcut = ConvBnAct(in_channels, out_channels, 1, stride=stride, act=None)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = self.shortcut(x)  # identity or 1x1 conv when the shape changes
        x = self.conv1(x)  # (B, C_out, H / stride, W / stride)
        x = self.bn1(x)
        x = self.act(x)
        x = self.conv2(x)
        x = self.bn2(x)
        return self.act(x + shortcut)


class InvertedResidual(nn.Sequential):
    """MobileNetV2's unit: 1x1 expand, 3x3 depthwise, 1x1 linear projection.

    Narrow -> wide -> narrow, the inverse of a ResNet bottleneck; the projection has no
    activation because ReLU on a narrow layer destroys information (paper, section 3.2).
    Wrap it with :class:`Residual` via :func:`inverted_residual` to get the skip connection.

    Taught in lessons/12_cnn_zoo.py.

    Args:
        in_channels: Channels of the input.
        out_channels: Channels of the output.
        stride: Stride of the depthwise conv.
        expand_ratio: Width of the hidden layer as a multiple of ``in_channels``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, stride: int = 1, expand_ratio: int = 6
    ) -> None:
        hidden = in_channels * expand_ratio
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBnAct(in_channels, hidden, 1, act=nn.ReLU6))  # (B, hidden, H, W)
        layers += [
            ConvBnAct(hidden, hidden, 3, stride=stride, groups=hidden, act=nn.ReLU6),
            ConvBnAct(hidden, out_channels, 1, act=None),  # linear bottleneck
        ]
        super().__init__(*layers)


def inverted_residual(
    in_channels: int, out_channels: int, *, stride: int = 1, expand_ratio: int = 6
) -> nn.Module:
    """An :class:`InvertedResidual`, wrapped in :class:`Residual` when the shape is kept."""
    block = InvertedResidual(in_channels, out_channels, stride=stride, expand_ratio=expand_ratio)
    if stride == 1 and in_channels == out_channels:
        return Residual(block)
    return block
