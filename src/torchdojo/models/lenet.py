"""Small convolutional nets for 28x28 digits (LeCun et al., 1998; seed 001 ch9).

``mnist_cnn`` is the fast modern variant the ``mnist-cnn`` recipe trains to 99 % in one epoch.
"""

from __future__ import annotations

from torch import Tensor, nn

from torchdojo.models.registry import register_model


class MnistCNN(nn.Module):
    """Two conv-BN-ReLU-pool stages and a linear head: 28x28 -> 7x7 -> logits.

    Taught in lessons/08_mnist.py.
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1, bias=False),   # (B, w, 28, 28)
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            nn.Conv2d(w, w, 3, padding=1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),                                        # (B, w, 14, 14)
            nn.Conv2d(w, 2 * w, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),                                        # (B, 2w, 7, 7)
            nn.Conv2d(2 * w, 4 * w, 3, padding=1, bias=False),
            nn.BatchNorm2d(4 * w),
            nn.ReLU(inplace=True),
            nn.AdaptiveMaxPool2d(1),                                # (B, 4w, 1, 1)
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * w, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (B, num_classes)


@register_model
def mnist_cnn(*, in_channels: int = 1, num_classes: int = 10, width: int = 32) -> MnistCNN:
    """The fast MNIST CNN (about 0.1 M parameters at width 32)."""
    return MnistCNN(in_channels=in_channels, num_classes=num_classes, width=width)
