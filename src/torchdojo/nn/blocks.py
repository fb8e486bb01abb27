"""Convolution building blocks shared by the CNN zoo: conv-BN-activation and a residual wrapper.

Taught in lessons/12_cnn_zoo.py.
"""

from __future__ import annotations

from torch import Tensor, nn


class ConvBnAct(nn.Sequential):
    """A ``k x k`` convolution (no bias), batch norm, then an activation; "same" padding.

    Taught in lessons/12_cnn_zoo.py.

    Args:
        in_channels: Channels of the input.
        out_channels: Channels of the output.
        kernel_size: Side of the square kernel.
        stride: Convolution stride; 2 halves H and W.
        groups: Convolution groups; ``groups=in_channels`` makes a depthwise conv.
        act: Activation class, or ``None`` for a linear (BN-only) output.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        groups: int = 1,
        act: type[nn.Module] | None = nn.ReLU,
    ) -> None:
        padding = kernel_size // 2
        layers: list[nn.Module] = [
            # bias=False: the BN shift that follows makes a conv bias redundant.
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_channels),
        ]
        if act is not None:
            layers.append(act(inplace=True) if act in _INPLACE else act())
        super().__init__(*layers)
        self.out_channels = out_channels


_INPLACE: frozenset[type[nn.Module]] = frozenset({nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish})


class Residual(nn.Module):
    """Add a module's input to its output: ``x + fn(x)`` (the fn must keep the shape).

    Taught in lessons/12_cnn_zoo.py.

    Args:
        fn: The residual branch.
    """

    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fn(x)
