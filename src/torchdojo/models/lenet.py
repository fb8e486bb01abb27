"""Small convolutional nets for 28x28 digits (LeCun et al., 1998; seed 001 ch9).

``lenet5`` is the classic LeNet-5 (sigmoid, average pooling, as in d2l's chapter 7.6);
``mnist_cnn`` is the fast modern variant the ``mnist-cnn`` recipe trains to 99 % in one epoch.
Taught in lessons/08_mnist.py.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from torchdojo.models.registry import register_model


class LeNet5(nn.Module):
    """LeNet-5: two conv + average-pool stages, then three linear layers (400 -> 120 -> 84).

    ``padding=2`` turns a 28x28 MNIST digit into the paper's 32x32 field; use ``padding=0`` for
    32x32 inputs. Taught in lessons/08_mnist.py.

    Args:
        in_channels: Channels of the input image.
        num_classes: Number of output logits.
        padding: Zero padding of the first conv (2 for 28x28 inputs, 0 for 32x32).
        activation: ``"sigmoid"`` as in the paper, or ``"relu"`` (trains much faster).
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        num_classes: int = 10,
        padding: int = 2,
        activation: Literal["sigmoid", "relu"] = "sigmoid",
    ) -> None:
        super().__init__()
        act: type[nn.Module] = nn.Sigmoid if activation == "sigmoid" else nn.ReLU
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=padding),  # (B, 6, 28, 28)
            act(),
            nn.AvgPool2d(2),  # (B, 6, 14, 14)
            nn.Conv2d(6, 16, 5),  # (B, 16, 10, 10)
            act(),
            nn.AvgPool2d(2),  # (B, 16, 5, 5)
        )
        self.head = nn.Sequential(
            nn.Flatten(),  # (B, 400)
            nn.Linear(16 * 5 * 5, 120),
            act(),
            nn.Linear(120, 84),
            act(),
            nn.Linear(84, num_classes),  # (B, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class MnistCNN(nn.Module):
    """Two conv-BN-ReLU-pool stages and a linear head: 28x28 -> 7x7 -> logits.

    Taught in lessons/08_mnist.py.
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1, bias=False),  # (B, w, 28, 28)
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            nn.Conv2d(w, w, 3, padding=1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, w, 14, 14)
            nn.Conv2d(w, 2 * w, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, 2w, 7, 7)
            nn.Conv2d(2 * w, 4 * w, 3, padding=1, bias=False),
            nn.BatchNorm2d(4 * w),
            nn.ReLU(inplace=True),
            nn.AdaptiveMaxPool2d(1),  # (B, 4w, 1, 1)
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * w, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (B, num_classes)


@register_model
def mnist_cnn(*, in_channels: int = 1, num_classes: int = 10, width: int = 32) -> MnistCNN:
    """The fast MNIST CNN (about 0.1 M parameters at width 32)."""
    return MnistCNN(in_channels=in_channels, num_classes=num_classes, width=width)


@register_model
def lenet5(
    *,
    in_channels: int = 1,
    num_classes: int = 10,
    padding: int = 2,
    activation: Literal["sigmoid", "relu"] = "sigmoid",
) -> LeNet5:
    """Classic LeNet-5 for 28x28 digits (``padding=0`` for 32x32 inputs); about 62 k parameters."""
    if activation not in ("sigmoid", "relu"):
        raise ValueError(f"activation must be 'sigmoid' or 'relu', got {activation!r}")
    return LeNet5(
        in_channels=in_channels, num_classes=num_classes, padding=padding, activation=activation
    )
