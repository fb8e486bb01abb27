"""ResNet-18/34 (He et al., 2015, https://arxiv.org/abs/1512.03385; d2l chapter 8.6).

``stem="cifar"`` opens with one 3x3 conv and no pooling, the usual choice for 32x32 images
(the 7x7 stride-2 conv + max-pool of ``stem="imagenet"`` would shrink 32x32 to 8x8 at once).
Taught in lessons/12_cnn_zoo.py. Recipes: cifar10_resnet.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from torchdojo.models.registry import register_model
from torchdojo.nn import BasicBlock, ConvBnAct

Stem = Literal["cifar", "imagenet"]


def make_stem(in_channels: int, stem: Stem) -> nn.Sequential:
    """The layers before the first residual stage: 64 channels out."""
    if stem == "cifar":
        return nn.Sequential(ConvBnAct(in_channels, 64, 3))  # (B, 64, H, W)
    if stem == "imagenet":
        return nn.Sequential(
            ConvBnAct(in_channels, 64, 7, stride=2),  # (B, 64, H / 2, W / 2)
            nn.MaxPool2d(3, stride=2, padding=1),  # (B, 64, H / 4, W / 4)
        )
    raise ValueError(f"unknown stem {stem!r}; choose 'cifar' (32x32 inputs) or 'imagenet'")


def make_stage(in_channels: int, out_channels: int, blocks: int, stride: int) -> nn.Sequential:
    """``blocks`` basic blocks; the first one changes width and stride."""
    layers = [BasicBlock(in_channels, out_channels, stride=stride)]
    layers += [BasicBlock(out_channels, out_channels) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet(nn.Module):
    """Stem, four stages of basic blocks (64-128-256-512), global pool, linear head.

    Taught in lessons/12_cnn_zoo.py.

    Args:
        layers: Number of blocks in each of the four stages.
        in_channels: Channels of the input image.
        num_classes: Number of output logits.
        stem: ``"cifar"`` (3x3 conv) or ``"imagenet"`` (7x7 stride-2 conv + max-pool).
    """

    def __init__(
        self,
        layers: tuple[int, int, int, int],
        *,
        in_channels: int = 3,
        num_classes: int = 10,
        stem: Stem = "cifar",
    ) -> None:
        super().__init__()
        self.stem = make_stem(in_channels, stem)  # (B, 64, 32, 32) with the cifar stem
        self.layer1 = make_stage(64, 64, layers[0], stride=1)  # (B, 64, 32, 32)
        self.layer2 = make_stage(64, 128, layers[1], stride=2)  # (B, 128, 16, 16)
        self.layer3 = make_stage(128, 256, layers[2], stride=2)  # (B, 256, 8, 8)
        self.layer4 = make_stage(256, 512, layers[3], stride=2)  # (B, 512, 4, 4)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (B, 512)
        self.fc = nn.Linear(512, num_classes)  # (B, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        return self.fc(self.pool(x))


@register_model
def resnet18(*, in_channels: int = 3, num_classes: int = 10, stem: Stem = "cifar") -> ResNet:
    """ResNet-18 (about 11.2 M parameters); ``stem="cifar"`` for 32x32 inputs."""
    return ResNet((2, 2, 2, 2), in_channels=in_channels, num_classes=num_classes, stem=stem)


@register_model
def resnet34(*, in_channels: int = 3, num_classes: int = 10, stem: Stem = "cifar") -> ResNet:
    """ResNet-34 (about 21.3 M parameters); ``stem="cifar"`` for 32x32 inputs."""
    return ResNet((3, 4, 6, 3), in_channels=in_channels, num_classes=num_classes, stem=stem)
