"""Models for MNIST-1D (Greydanus & Kobak, 2020, https://arxiv.org/abs/2011.14439).

The paper's four baselines (logistic regression, MLP, ConvBase, bidirectional GRU, sized as in
its reference code) and a modern small residual 1-D CNN. Inputs are (B, 1, 40) or (B, 40).
Recipes: mnist1d_paper (the paper's table), mnist1d_cnn (the modern CNN, >= 98 %).
"""

from __future__ import annotations

from torch import Tensor, nn

from torchdojo.models.registry import register_model

SEQ_LEN = 40  # points per MNIST-1D curve


class Mnist1dGRU(nn.Module):
    """Bidirectional GRU over the 40 points, every hidden state into one linear head.

    Args:
        hidden: GRU width per direction (the paper uses 6).
        num_classes: Output classes.
    """

    def __init__(self, *, hidden: int = 6, num_classes: int = 10) -> None:
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(SEQ_LEN * 2 * hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = x.reshape(len(x), SEQ_LEN, 1)  # (B, T, 1)
        states, _ = self.gru(x)  # (B, T, 2*hidden)
        return self.head(states.flatten(1))  # (B, num_classes)


class ResBlock1d(nn.Module):
    """conv-BN-ReLU-conv-BN plus a shortcut (1x1 conv when the shape changes), then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm1d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv1d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm1d(out_channels),
        )
        same = stride == 1 and in_channels == out_channels
        self.shortcut: nn.Module = (
            nn.Identity()
            if same
            else nn.Sequential(
                nn.Conv1d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm1d(out_channels),
            )
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class Mnist1dResNet(nn.Module):
    """A small residual 1-D CNN: stem, three stages (40 -> 20 -> 10 points), global pooling.

    Args:
        width: Channels of the first stage (doubled at each downsampling).
        num_classes: Output classes.
    """

    def __init__(self, *, width: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(
            nn.Conv1d(1, w, 5, padding=2, bias=False),  # (B, w, 40)
            nn.BatchNorm1d(w),
            nn.ReLU(inplace=True),
        )
        self.stages = nn.Sequential(
            ResBlock1d(w, w),
            ResBlock1d(w, 2 * w, stride=2),  # (B, 2w, 20)
            ResBlock1d(2 * w, 4 * w, stride=2),  # (B, 4w, 10)
        )
        self.head = nn.Sequential(
            nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(4 * w, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x.reshape(len(x), 1, SEQ_LEN)  # (B, 1, 40)
        return self.head(self.stages(self.stem(x)))  # (B, num_classes)


@register_model
def mnist1d_logistic(*, num_classes: int = 10) -> nn.Sequential:
    """Logistic regression on the 40 raw points (the paper's ~32 %)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(SEQ_LEN, num_classes))


@register_model
def mnist1d_mlp(*, hidden: int = 100, num_classes: int = 10) -> nn.Sequential:
    """The paper's MLP: 40 -> 100 -> 100 -> classes with ReLU (~68 %)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(SEQ_LEN, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


@register_model
def mnist1d_convbase(*, channels: int = 25, num_classes: int = 10) -> nn.Sequential:
    """The paper's ConvBase: three stride-2 convs (40 -> 19 -> 10 -> 5 points), linear (~94 %)."""
    c = channels
    return nn.Sequential(
        nn.Conv1d(1, c, 5, stride=2, padding=1),  # (B, c, 19)
        nn.ReLU(),
        nn.Conv1d(c, c, 3, stride=2, padding=1),  # (B, c, 10)
        nn.ReLU(),
        nn.Conv1d(c, c, 3, stride=2, padding=1),  # (B, c, 5)
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(c * 5, num_classes),
    )


@register_model
def mnist1d_gru(*, hidden: int = 6, num_classes: int = 10) -> Mnist1dGRU:
    """The paper's bidirectional GRU with 6 units per direction (~91 %)."""
    return Mnist1dGRU(hidden=hidden, num_classes=num_classes)


@register_model
def mnist1d_resnet(*, width: int = 32, num_classes: int = 10) -> Mnist1dResNet:
    """The modern small residual CNN of the mnist1d-cnn recipe."""
    return Mnist1dResNet(width=width, num_classes=num_classes)
