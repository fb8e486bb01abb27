"""MobileNetV2 for 32x32 images (Sandler et al., 2018, https://arxiv.org/abs/1801.04381).

Inverted residual blocks (1x1 expand, 3x3 depthwise, linear 1x1 projection) keep the cost low.
For 32x32 inputs the stem and the second stage use stride 1 instead of 2 (the common CIFAR
change), so the feature map is 4x4 at the end instead of 1x1. Taught in lessons/12_cnn_zoo.py.
"""

from __future__ import annotations

from torch import Tensor, nn

from torchdojo.models.registry import register_model
from torchdojo.nn import ConvBnAct, inverted_residual

# (expand_ratio t, channels c, repeats n, first stride s) per stage, as in the paper's table 2,
# with the strides of stage 2 set to 1 for 32x32 inputs.
STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled width to a multiple of ``divisor``, never more than 10 % below it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class MobileNetV2(nn.Module):
    """Stem, seven stages of inverted residuals, a 1x1 conv to 1280, pool, dropout, linear.

    Taught in lessons/12_cnn_zoo.py.

    Args:
        in_channels: Channels of the input image.
        num_classes: Number of output logits.
        width_mult: Multiplier on every width (0.5, 0.75, 1.0 ...).
        dropout: Dropout before the linear head.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        num_classes: int = 10,
        width_mult: float = 1.0,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        channels = make_divisible(32 * width_mult)
        layers: list[nn.Module] = [ConvBnAct(in_channels, channels, 3, act=nn.ReLU6)]
        for t, c, n, s in STAGES:
            out_channels = make_divisible(c * width_mult)
            for i in range(n):
                stride = s if i == 0 else 1
                layers.append(
                    inverted_residual(channels, out_channels, stride=stride, expand_ratio=t)
                )
                channels = out_channels
        last = make_divisible(1280 * max(1.0, width_mult))
        layers.append(ConvBnAct(channels, last, 1, act=nn.ReLU6))  # (B, 1280, 4, 4) at 32x32
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),  # (B, 1280, 1, 1)
            nn.Flatten(),  # (B, 1280)
            nn.Dropout(dropout),
            nn.Linear(last, num_classes),  # (B, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@register_model
def mobilenet_v2(
    *, in_channels: int = 3, num_classes: int = 10, width_mult: float = 1.0, dropout: float = 0.2
) -> MobileNetV2:
    """MobileNetV2 for 32x32 inputs (about 2.2 M parameters at ``width_mult=1``)."""
    return MobileNetV2(
        in_channels=in_channels, num_classes=num_classes, width_mult=width_mult, dropout=dropout
    )
