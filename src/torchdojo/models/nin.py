"""Network in Network for 32x32 images (Lin et al., 2013, https://arxiv.org/abs/1312.4400).

Each NiN block is a conv followed by two 1x1 convs (a per-pixel MLP); the last block outputs
one channel per class and global average pooling replaces the fully connected head.
d2l chapter 8.3. Taught in lessons/12_cnn_zoo.py.
"""

from __future__ import annotations

from torch import Tensor, nn

from torchdojo.models.registry import register_model


class NiNBlock(nn.Sequential):
    """A ``k x k`` conv then two 1x1 convs, each followed by ReLU.

    Taught in lessons/12_cnn_zoo.py.

    Args:
        in_channels: Channels of the input.
        out_channels: Channels of every conv in the block.
        kernel_size: Side of the first conv's kernel ("same" padding).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 1),  # the per-pixel MLP
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 1),
            nn.ReLU(inplace=True),
        )


class NiN(nn.Module):
    """Three NiN blocks with pooling, then a class-channel block and global average pooling.

    Taught in lessons/12_cnn_zoo.py.

    Args:
        in_channels: Channels of the input image.
        num_classes: Number of output logits.
        width: Channels of the first block (the second and third use ``2 * width``).
        dropout: Dropout before the classifier block.
    """

    def __init__(
        self, *, in_channels: int = 3, num_classes: int = 10, width: int = 96, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            NiNBlock(in_channels, width, 5),  # (B, w, 32, 32)
            nn.MaxPool2d(3, stride=2, padding=1),  # (B, w, 16, 16)
            NiNBlock(width, 2 * width, 5),  # (B, 2w, 16, 16)
            nn.MaxPool2d(3, stride=2, padding=1),  # (B, 2w, 8, 8)
            NiNBlock(2 * width, 2 * width, 3),  # (B, 2w, 8, 8)
            nn.Dropout(dropout),
        )
        self.head = nn.Sequential(
            # The classifier block is one plain conv: no ReLU, so logits can be negative.
            nn.Conv2d(2 * width, num_classes, 3, padding=1),  # (B, num_classes, 8, 8)
            nn.AdaptiveAvgPool2d(1),  # (B, num_classes, 1, 1)
            nn.Flatten(),  # (B, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@register_model
def nin(
    *, in_channels: int = 3, num_classes: int = 10, width: int = 96, dropout: float = 0.5
) -> NiN:
    """NiN for 32x32 inputs (about 1 M parameters at ``width=96``)."""
    return NiN(in_channels=in_channels, num_classes=num_classes, width=width, dropout=dropout)
