"""Multi-layer perceptrons for flat or image inputs (seed 001 ch8, 002 §2-3).

``deep_mlp`` is the plain, unregistered deep network of the deep-mlp-init recipe: its choice of
activation, BatchNorm and init is what decides whether the signal survives 20 layers.
"""

from __future__ import annotations

from torch import Tensor, nn

from torchdojo.models.registry import register_model
from torchdojo.nn import InitScheme, init_weights

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


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


def deep_mlp(
    *,
    in_features: int,
    num_classes: int,
    width: int,
    depth: int,
    activation: str = "relu",
    batchnorm: bool = False,
    init: InitScheme | None = None,
    init_std: float = 0.01,
) -> nn.Sequential:
    """Flatten, ``depth`` x (Linear [-> BatchNorm1d] -> activation), Linear head.

    Taught in lessons/07_training_stability.py; used by the deep-mlp-init recipe.

    Args:
        in_features: Inputs per sample (flattened).
        num_classes: Outputs (logits).
        width: Units of each hidden layer.
        depth: Hidden layers.
        activation: ``"relu"``, ``"tanh"`` or ``"sigmoid"``.
        batchnorm: BatchNorm1d after each hidden Linear (which then has no bias).
        init: Re-initialize every Linear with :func:`torchdojo.nn.init_weights` (None: keep
            PyTorch's default init).
        init_std: Standard deviation of the ``"normal"`` init.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, not {activation!r}")
    layers: list[nn.Module] = [nn.Flatten()]
    features = in_features
    for _ in range(depth):
        layers.append(nn.Linear(features, width, bias=not batchnorm))
        layers += [nn.BatchNorm1d(width)] if batchnorm else []
        layers.append(ACTIVATIONS[activation]())
        features = width
    layers.append(nn.Linear(features, num_classes))
    model = nn.Sequential(*layers)
    if init is not None:
        init_weights(model, init, std=init_std)
    return model
