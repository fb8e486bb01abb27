"""Multi-layer perceptrons for flat or image inputs (seed 001 ch8, 002 §2-3)."""

from __future__ import annotations

from torch import Tensor, nn

from torchdojo.models.registry import register_model


class MLP(nn.Module):
    """Flatten, then ``depth`` hidden layers of ``width`` units with ReLU, then a linear head.

    Taught in lessons/05_deep_nets.py.
    """

    def __init__(
        self,
        *,
        in_features: int,
        num_classes: int,
        width: int = 256,
        depth: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        features = in_features
        for _ in range(depth):
            layers += [nn.Linear(features, width), nn.ReLU(inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            features = width
        layers.append(nn.Linear(features, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, num_classes)


@register_model
def mlp(
    *,
    in_features: int = 784,
    num_classes: int = 10,
    width: int = 256,
    depth: int = 2,
    dropout: float = 0.0,
) -> MLP:
    """An MLP; defaults fit 28x28 grayscale images."""
    return MLP(
        in_features=in_features, num_classes=num_classes, width=width, depth=depth, dropout=dropout
    )
