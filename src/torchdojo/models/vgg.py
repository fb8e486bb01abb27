"""VGG with batch norm for 32x32 images (Simonyan & Zisserman, 2014; d2l chapter 8.2).

A VGG is a list of 3x3 conv widths with "M" (2x2 max-pool) between stages; five pools take a
32x32 image to 1x1, so the head is a single linear layer on 512 features (the usual CIFAR
variant, instead of the 4096-wide MLP for 224x224). Taught in lessons/12_cnn_zoo.py.
"""

from __future__ import annotations

from torch import Tensor, nn

from torchdojo.models.registry import register_model
from torchdojo.nn import ConvBnAct

# Conv widths per stage; "M" is a 2x2 max-pool that halves H and W.
VGG11: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
VGG16: tuple[int | str, ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)


def make_vgg_features(layout: tuple[int | str, ...], in_channels: int) -> nn.Sequential:
    """Stack conv-BN-ReLU layers and max-pools following ``layout``."""
    layers: list[nn.Module] = []
    channels = in_channels
    for item in layout:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers.append(ConvBnAct(channels, int(item), 3))
            channels = int(item)
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG features (conv-BN-ReLU stacks), global pooling and a dropout + linear head.

    Taught in lessons/12_cnn_zoo.py.

    Args:
        layout: Conv widths and ``"M"`` pools, e.g. :data:`VGG11`.
        in_channels: Channels of the input image.
        num_classes: Number of output logits.
        dropout: Dropout before the linear head.
    """

    def __init__(
        self,
        layout: tuple[int | str, ...],
        *,
        in_channels: int = 3,
        num_classes: int = 10,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.features = make_vgg_features(layout, in_channels)  # (B, 512, 1, 1) at 32x32
        width = [int(c) for c in layout if c != "M"][-1]
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),  # (B, 512, 1, 1) for any input size
            nn.Flatten(),  # (B, 512)
            nn.Dropout(dropout),
            nn.Linear(width, num_classes),  # (B, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@register_model
def vgg11(*, in_channels: int = 3, num_classes: int = 10, dropout: float = 0.5) -> VGG:
    """VGG-11 with batch norm for 32x32 inputs (about 9.2 M parameters)."""
    return VGG(VGG11, in_channels=in_channels, num_classes=num_classes, dropout=dropout)


@register_model
def vgg16(*, in_channels: int = 3, num_classes: int = 10, dropout: float = 0.5) -> VGG:
    """VGG-16 with batch norm for 32x32 inputs (about 14.7 M parameters)."""
    return VGG(VGG16, in_channels=in_channels, num_classes=num_classes, dropout=dropout)
