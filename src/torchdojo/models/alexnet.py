"""AlexNet scaled to 32x32 images (Krizhevsky et al., 2012; d2l chapter 8.1).

The ImageNet original opens with an 11x11 stride-4 conv for 224x224 inputs; on 32x32 images
that would leave almost nothing, so this variant uses 3x3 convs and three 2x2 poolings
(32 -> 16 -> 8 -> 4) while keeping the 5-conv + 3-linear shape, ReLU and dropout.
Taught in lessons/12_cnn_zoo.py.
"""

from __future__ import annotations

from torch import Tensor, nn

from torchdojo.models.registry import register_model


class AlexNet(nn.Module):
    """Five convs (64-192-384-256-256) and a dropout MLP head.

    Taught in lessons/12_cnn_zoo.py.

    Args:
        in_channels: Channels of the input image.
        num_classes: Number of output logits.
        hidden: Width of the two hidden linear layers (4096 in the paper).
        dropout: Dropout before each hidden linear layer.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        num_classes: int = 10,
        hidden: int = 1024,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, padding=1),  # (B, 64, 32, 32)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, 64, 16, 16)
            nn.Conv2d(64, 192, 3, padding=1),  # (B, 192, 16, 16)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, 192, 8, 8)
            nn.Conv2d(192, 384, 3, padding=1),  # (B, 384, 8, 8)
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1),  # (B, 256, 8, 8)
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),  # (B, 256, 8, 8)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, 256, 4, 4)
        )
        self.head = nn.Sequential(
            nn.Flatten(),  # (B, 4096)
            nn.Dropout(dropout),
            nn.Linear(256 * 4 * 4, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),  # (B, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@register_model
def alexnet(
    *, in_channels: int = 3, num_classes: int = 10, hidden: int = 1024, dropout: float = 0.5
) -> AlexNet:
    """AlexNet for 32x32 inputs (about 7.5 M parameters at ``hidden=1024``)."""
    return AlexNet(in_channels=in_channels, num_classes=num_classes, hidden=hidden, dropout=dropout)
