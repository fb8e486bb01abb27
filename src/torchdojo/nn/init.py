"""Weight initialisation schemes (Glorot & Bengio, 2010; He et al., 2015).

Taught in lessons/05_deep_nets.py.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

InitScheme = Literal["kaiming", "xavier", "normal"]

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)


def init_weights(
    model: nn.Module, scheme: InitScheme = "kaiming", *, std: float = 0.01
) -> nn.Module:
    """Re-initialise every conv and linear layer of ``model`` in place, and return it.

    Weights follow ``scheme``; biases become 0; norm layers get weight 1 and bias 0.

    Args:
        model: The model to initialise.
        scheme: ``"kaiming"`` (He normal, fan-out, for ReLU nets), ``"xavier"`` (Glorot uniform,
            for tanh/sigmoid nets) or ``"normal"`` (N(0, std^2)).
        std: Standard deviation for the ``"normal"`` scheme.

    Raises:
        ValueError: For an unknown scheme.
    """
    if scheme not in ("kaiming", "xavier", "normal"):
        raise ValueError(f"unknown init scheme {scheme!r}; choose kaiming, xavier or normal")
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            _init_layer(module, scheme, std)
        elif isinstance(module, _NORMS) and module.weight is not None:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model


def _init_layer(
    module: nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear, scheme: str, std: float
) -> None:
    if scheme == "kaiming":
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    elif scheme == "xavier":
        nn.init.xavier_uniform_(module.weight)
    else:
        nn.init.normal_(module.weight, mean=0.0, std=std)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
