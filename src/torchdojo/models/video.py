"""Video classifiers over clips (B, C, T, H, W): ECO-Lite, a frame-averaging 2-D baseline, R(2+1)D.

- **ECO-Lite** (Zolfaghari et al., 2018, https://arxiv.org/abs/1804.09066): a shared 2-D net
  turns each sampled frame into feature maps; the maps are stacked in time and a small 3-D
  ResNet reads motion from them. The paper's 2-D part is BN-Inception up to inception-3c
  (96 maps of 28x28) and its 3-D part ResNet-18's conv3-5; here both are a few layers wide.
- **Frame average** (the 2-D baseline, TSN-style): the same 2-D net, pooled per frame, and the
  features averaged over time. Averaging forgets the order of the frames, so a clip and its
  reversal get the same logits: it cannot tell "left" from "right".
- **R(2+1)D** (Tran et al., 2018, https://arxiv.org/abs/1711.11248): every 3x3x3 convolution
  factored into a 1x3x3 spatial and a 3x1x1 temporal one, with a ReLU between.

Taught in lessons/28_video.py. Recipe: video_actions.
"""

from __future__ import annotations

from torch import Tensor, nn

from torchdojo.models.registry import register_model
from torchdojo.nn.blocks import ConvBnAct


class FrameEncoder(nn.Sequential):
    """The 2-D net every frame goes through: three conv-BN-ReLU layers, H and W divided by 4.

    Taught in lessons/28_video.py.

    Args:
        in_channels: Channels of a frame (1 gray, 3 RGB).
        width: Channels of the first layer; the output has ``2 * width``.
    """

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__(
            ConvBnAct(in_channels, width, stride=2),  # (B*T, w, H/2, W/2)
            ConvBnAct(width, 2 * width, stride=2),  # (B*T, 2w, H/4, W/4)
            ConvBnAct(2 * width, 2 * width),  # (B*T, 2w, H/4, W/4)
        )


def per_frame(encoder: nn.Module, x: Tensor) -> Tensor:
    """Run a 2-D ``encoder`` on every frame of (B, C, T, H, W): (B, C', T, H', W')."""
    B, C, T, H, W = x.shape
    frames = x.transpose(1, 2).reshape(B * T, C, H, W)  # (B*T, C, H, W)
    maps = encoder(frames)  # (B*T, C', H', W')
    return maps.view(B, T, *maps.shape[1:]).transpose(1, 2)  # (B, C', T, H', W')


class BasicBlock3d(nn.Module):
    """A 3-D residual block: two 3x3x3 conv-BN layers and a shortcut (1x1x1 conv on a change).

    Taught in lessons/28_video.py.

    Args:
        in_channels: Channels in.
        out_channels: Channels out.
        stride: Stride in T, H and W of the first conv (and the shortcut).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(out_channels)
        self.conv2 = nn.Conv3d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm3d(out_channels)
        self.act = nn.ReLU(inplace=True)
        changes = stride != 1 or in_channels != out_channels
        self.shortcut: nn.Module = (
            nn.Sequential(
                nn.Conv3d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm3d(out_channels),
            )
            if changes
            else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        shortcut = self.shortcut(x)  # (B, out, T', H', W')
        x = self.act(self.bn1(self.conv1(x)))
        x = self.bn2(self.conv2(x))
        return self.act(x + shortcut)


class ECOLite(nn.Module):
    """A shared 2-D net per frame, the maps stacked in time, a 3-D ResNet head, a classifier.

    Taught in lessons/28_video.py.

    Args:
        in_channels: Channels of a frame.
        num_classes: Output logits.
        width: First 2-D layer's channels (the stacked maps have ``2 * width``).
        width_3d: Channels of the 3-D blocks.
        dropout: Dropout before the classifier (ECO uses 0.5 on Kinetics' 400 classes).
    """

    def __init__(
        self, *, in_channels: int, num_classes: int, width: int, width_3d: int, dropout: float
    ) -> None:
        super().__init__()
        self.frames = FrameEncoder(in_channels, width)
        self.temporal = nn.Sequential(
            BasicBlock3d(2 * width, width_3d, stride=2),  # (B, w3, T/2, H/8, W/8)
            BasicBlock3d(width_3d, width_3d),
        )
        self.pool = nn.AdaptiveAvgPool3d(1)  # (B, w3, 1, 1, 1)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(width_3d, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        maps = per_frame(self.frames, x)  # (B, 2w, T, H/4, W/4): frames stacked in time
        maps = self.temporal(maps)  # (B, w3, T/2, H/8, W/8)
        return self.head(self.pool(maps))  # (B, num_classes)


class FrameAverage(nn.Module):
    """The 2-D baseline: the same per-frame net, one more stage, pooled, averaged over time.

    Taught in lessons/28_video.py.

    Args:
        in_channels: Channels of a frame.
        num_classes: Output logits.
        width: First 2-D layer's channels.
        width_3d: Channels of the extra 2-D stage (named as in ECO-Lite: the same capacity).
        dropout: Dropout before the classifier.
    """

    def __init__(
        self, *, in_channels: int, num_classes: int, width: int, width_3d: int, dropout: float
    ) -> None:
        super().__init__()
        self.frames = nn.Sequential(
            FrameEncoder(in_channels, width),
            ConvBnAct(2 * width, width_3d, stride=2),  # (B*T, w3, H/8, W/8)
            ConvBnAct(width_3d, width_3d),
            nn.AdaptiveAvgPool2d(1),  # (B*T, w3, 1, 1)
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(width_3d, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        feats = per_frame(self.frames, x)  # (B, w3, T, 1, 1)
        feats = feats.mean(dim=2)  # (B, w3, 1, 1): the order of the frames is gone
        return self.head(feats)  # (B, num_classes)


class Conv2Plus1d(nn.Sequential):
    """A 3x3x3 convolution factored: 1x3x3 in space, BN-ReLU, 3x1x1 in time.

    The middle width follows R(2+1)D: the factored pair has about the parameters of the full
    3x3x3 kernel. Taught in lessons/28_video.py.

    Args:
        in_channels: Channels in.
        out_channels: Channels out.
        stride: Stride in space (H, W).
        stride_t: Stride in time.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, stride_t: int = 1):
        mid = (27 * in_channels * out_channels) // (9 * in_channels + 3 * out_channels)
        super().__init__(
            nn.Conv3d(in_channels, mid, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, out_channels, (3, 1, 1), (stride_t, 1, 1), (1, 0, 0), bias=False),
        )


class R2Plus1dBlock(nn.Module):
    """A residual block of two (2+1)-D convolutions, each followed by BN (and ReLU).

    Taught in lessons/28_video.py.

    Args:
        in_channels: Channels in.
        out_channels: Channels out.
        stride: Stride in space of the first convolution (and the shortcut).
        stride_t: Stride in time likewise.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, stride_t: int = 1):
        super().__init__()
        self.conv1 = Conv2Plus1d(in_channels, out_channels, stride, stride_t)
        self.bn1 = nn.BatchNorm3d(out_channels)
        self.conv2 = Conv2Plus1d(out_channels, out_channels)
        self.bn2 = nn.BatchNorm3d(out_channels)
        self.act = nn.ReLU(inplace=True)
        self.shortcut = nn.Sequential(
            nn.Conv3d(in_channels, out_channels, 1, (stride_t, stride, stride), bias=False),
            nn.BatchNorm3d(out_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        shortcut = self.shortcut(x)  # (B, out, T', H', W')
        x = self.act(self.bn1(self.conv1(x)))
        x = self.bn2(self.conv2(x))
        return self.act(x + shortcut)


class R2Plus1d(nn.Module):
    """A small R(2+1)D net: a (2+1)-D stem, two residual blocks, pooled, a classifier.

    Taught in lessons/28_video.py.

    Args:
        in_channels: Channels of a frame.
        num_classes: Output logits.
        width: Channels of the stem; the blocks have ``2 * width`` and ``width_3d``.
        width_3d: Channels of the last block.
        dropout: Dropout before the classifier.
    """

    def __init__(
        self, *, in_channels: int, num_classes: int, width: int, width_3d: int, dropout: float
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            Conv2Plus1d(in_channels, width, stride=2),  # (B, w, T, H/2, W/2)
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
        )
        self.blocks = nn.Sequential(
            R2Plus1dBlock(width, 2 * width, stride=2),  # (B, 2w, T, H/4, W/4)
            R2Plus1dBlock(2 * width, width_3d, stride=2, stride_t=2),  # (B, w3, T/2, H/8, W/8)
        )
        self.pool = nn.AdaptiveAvgPool3d(1)  # (B, w3, 1, 1, 1)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(width_3d, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)  # (B, w, T, H/2, W/2)
        x = self.blocks(x)  # (B, w3, T/2, H/8, W/8)
        return self.head(self.pool(x))  # (B, num_classes)


@register_model
def eco_lite(
    *,
    in_channels: int = 1,
    num_classes: int = 9,
    width: int = 16,
    width_3d: int = 48,
    dropout: float = 0.3,
) -> ECOLite:
    """ECO-Lite for 64x64 clips: 2-D net per frame, then a 3-D ResNet head."""
    return ECOLite(
        in_channels=in_channels,
        num_classes=num_classes,
        width=width,
        width_3d=width_3d,
        dropout=dropout,
    )


@register_model
def frame_average(
    *,
    in_channels: int = 1,
    num_classes: int = 9,
    width: int = 16,
    width_3d: int = 48,
    dropout: float = 0.3,
) -> FrameAverage:
    """The 2-D baseline: per-frame features averaged over time (blind to frame order)."""
    return FrameAverage(
        in_channels=in_channels,
        num_classes=num_classes,
        width=width,
        width_3d=width_3d,
        dropout=dropout,
    )


@register_model
def r2plus1d(
    *,
    in_channels: int = 1,
    num_classes: int = 9,
    width: int = 16,
    width_3d: int = 48,
    dropout: float = 0.3,
) -> R2Plus1d:
    """A small R(2+1)D: every 3-D convolution split into space then time."""
    return R2Plus1d(
        in_channels=in_channels,
        num_classes=num_classes,
        width=width,
        width_3d=width_3d,
        dropout=dropout,
    )
