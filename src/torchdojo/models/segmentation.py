"""Semantic segmentation: U-Net, PSPNet and DeepLabV3, each ``forward(x) -> logits (B, K, H, W)``.

U-Net (Ronneberger et al., 2015, https://arxiv.org/abs/1505.04597; seed 004 ch13) trains from
scratch: a contracting path of double 3x3 convs, an expanding path of transposed convs, and
skip connections that concatenate the encoder's features at each scale. We pad the convs
("same"), unlike the paper's valid convs, so the output is the input's size. PSPNet (Zhao et
al., 2017, https://arxiv.org/abs/1612.01105; seed 003 ch3) pools the backbone's features into
1x1, 2x2, 3x3 and 6x6 bins (the pyramid pooling module) for context at every scale, and trains
with an auxiliary head on an earlier stage (``forward_aux``). DeepLabV3 (Chen et al., 2017,
https://arxiv.org/abs/1706.05587) samples context with atrous (dilated) convolutions at several
rates plus an image-level pooling branch (ASPP). Both sit on torchvision's MobileNetV2, whose
ImageNet weights load offline from ``$TORCH_HOME`` (``pretrained=True``); its last strides
become dilations, so the features stay at 1/8 (PSPNet) or 1/16 (DeepLabV3) of the input.
Lesson: lessons/20_segmentation.py. Recipes: nuclei-segmentation, scene-segmentation.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from torchdojo.models.registry import register_model
from torchdojo.nn import ConvBnAct

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
AUX_STAGE = 14  # MobileNetV2 features[:14] end in the 96-channel stage: the auxiliary head's input


# -------------------------------------------------------------------------------- U-Net
class DoubleConv(nn.Sequential):
    """Two 3x3 conv + BN + ReLU: the unit of each U-Net level."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            ConvBnAct(in_channels, out_channels), ConvBnAct(out_channels, out_channels)
        )


class Up(nn.Module):
    """Double the side with a 2x2 transposed conv, concatenate the skip, then a DoubleConv."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.conv = DoubleConv(2 * out_channels, out_channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.up(x)  # (B, C_out, 2h, 2w)
        return self.conv(torch.cat([skip, x], 1))  # (B, C_out, 2h, 2w)


class UNet(nn.Module):
    """U-Net: ``depth`` downsamplings, widths ``width * 2**level``, "same" convs.

    Inputs of any size work: they are zero-padded to a multiple of ``2**depth`` and the
    logits cropped back. Taught in lessons/20_segmentation.py.

    Args:
        in_channels: Channels of the input image.
        num_classes: Output classes K (background included).
        width: Channels of the first level (the paper: 64).
        depth: Number of 2x downsamplings (the paper: 4).
    """

    def __init__(self, *, in_channels: int, num_classes: int, width: int, depth: int) -> None:
        super().__init__()
        widths = [width * 2**level for level in range(depth + 1)]
        self.multiple = 2**depth
        self.stem = DoubleConv(in_channels, widths[0])
        self.down = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), DoubleConv(widths[i], widths[i + 1]))
            for i in range(depth)
        )
        self.up = nn.ModuleList(Up(widths[i + 1], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        H, W = x.shape[-2:]
        side_h = math.ceil(H / self.multiple) * self.multiple
        side_w = math.ceil(W / self.multiple) * self.multiple
        x = F.pad(x, (0, side_w - W, 0, side_h - H))  # (B, C, H', W'), multiples of 2**depth
        skips = [self.stem(x)]  # (B, width, H', W')
        for down in self.down:
            skips.append(down(skips[-1]))  # each halves H', W' and doubles the width
        x = skips.pop()  # (B, width * 2**depth, H' / 2**depth, W' / 2**depth)
        for up in self.up:
            x = up(x, skips.pop())
        return self.head(x)[..., :H, :W]  # (B, K, H, W)


# -------------------------------------------------------------- the MobileNetV2 backbone
class ToRGB(nn.Module):
    """Bring the input to 3 ImageNet-normalized channels: grayscale is repeated, RGB kept,
    other channel counts mixed by a learned 1x1 conv."""

    mean: Tensor
    std: Tensor

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.mix: nn.Module = (
            nn.Conv2d(in_channels, 3, 1) if in_channels not in {1, 3} else nn.Identity()
        )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = self.mix(x).expand(-1, 3, -1, -1)  # (B, 3, H, W); a 1-channel input is repeated
        return (x - self.mean) / self.std


class MobileNetV2Backbone(nn.Module):
    """torchvision's MobileNetV2 features (without the 1280-channel 1x1 conv), with strides
    turned into dilations so the output stride is ``output_stride`` (8 or 16).

    ``forward`` returns the 96-channel stage (for an auxiliary head) and the 320-channel last
    stage, both at 1/``output_stride`` of the input.

    Args:
        in_channels: Channels of the input image.
        output_stride: 8 (dilate the last two downsampling stages) or 16 (the last one).
        pretrained: Load torchvision's ImageNet weights from ``$TORCH_HOME`` (offline).
    """

    def __init__(self, *, in_channels: int, output_stride: int, pretrained: bool) -> None:
        super().__init__()
        from torchdojo.models.hub import create_hub_model

        weights = "IMAGENET1K_V1" if pretrained else None
        features = cast(
            nn.Sequential, create_hub_model("tv:mobilenet_v2", weights=weights).features
        )
        if output_stride not in {8, 16}:
            raise ValueError(f"output_stride={output_stride}: use 8 or 16")
        if output_stride == 8:
            _dilate(features[7:AUX_STAGE], 2)  # the 1/16 stage stays at 1/8
            _dilate(features[AUX_STAGE:18], 4)
        else:
            _dilate(features[AUX_STAGE:18], 2)  # the 1/32 stage stays at 1/16
        self.to_rgb = ToRGB(in_channels)
        self.low = features[:AUX_STAGE]  # (B, 96, H/s, W/s)
        self.high = features[AUX_STAGE:18]  # (B, 320, H/s, W/s)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        low = self.low(self.to_rgb(x))  # (B, 96, H/s, W/s)
        return low, self.high(low)  # (B, 320, H/s, W/s)


def _dilate(blocks: nn.Module, dilation: int) -> None:
    """Replace the stride-2 of the depthwise 3x3 convs in ``blocks`` by 1 and dilate them all
    (the weights are unchanged: dilation only spaces the taps)."""
    for module in blocks.modules():
        if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3):
            module.stride = (1, 1)
            module.dilation = (dilation, dilation)
            module.padding = (dilation, dilation)


# -------------------------------------------------------------------------------- PSPNet
class PyramidPooling(nn.Module):
    """Average-pool into ``bins`` x ``bins`` grids, reduce each with a 1x1 conv, upsample back
    and concatenate with the input: ``(B, C, h, w) -> (B, 2C, h, w)`` for 4 bins.

    The pooled branches have no batch norm: a 1x1 grid has one value per channel and image,
    so BN would fail on a batch of one (and be noisy on small batches).

    Args:
        in_channels: Channels C of the features.
        bins: Grid sides (the paper: 1, 2, 3, 6).
    """

    def __init__(self, in_channels: int, bins: tuple[int, ...] = (1, 2, 3, 6)) -> None:
        super().__init__()
        reduced = in_channels // len(bins)
        self.branches = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), nn.Conv2d(in_channels, reduced, 1), nn.ReLU())
            for b in bins
        )

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        pooled = [
            F.interpolate(branch(x), size=size, mode="bilinear", align_corners=False)
            for branch in self.branches
        ]  # each (B, C / len(bins), h, w)
        return torch.cat([x, *pooled], 1)  # (B, C + len(bins) * C / len(bins), h, w)


def classifier_head(in_channels: int, width: int, num_classes: int, dropout: float) -> nn.Module:
    """3x3 conv + BN + ReLU, dropout, 1x1 conv to the K class logits."""
    return nn.Sequential(
        ConvBnAct(in_channels, width), nn.Dropout2d(dropout), nn.Conv2d(width, num_classes, 1)
    )


class PSPNet(nn.Module):
    """PSPNet: MobileNetV2 (output stride 8 or 16), pyramid pooling, a classifier, bilinear upsampling;
    an auxiliary head on the 96-channel stage for training (``forward_aux``).

    Taught in lessons/20_segmentation.py.

    Args:
        in_channels: Channels of the input image.
        num_classes: Output classes K (background included).
        width: Channels of the heads' 3x3 conv.
        pretrained: ImageNet weights for the backbone (offline, from ``$TORCH_HOME``).
        output_stride: 8 (the paper) or 16 (about 3x cheaper on a CPU, coarser).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        width: int,
        pretrained: bool,
        output_stride: int,
    ) -> None:
        super().__init__()
        self.backbone = MobileNetV2Backbone(
            in_channels=in_channels, output_stride=output_stride, pretrained=pretrained
        )
        self.ppm = PyramidPooling(320)
        self.head = classifier_head(640, width, num_classes, dropout=0.1)
        self.aux_head = classifier_head(96, width // 2, num_classes, dropout=0.1)

    def forward(self, x: Tensor) -> Tensor:
        _, high = self.backbone(x)  # (B, 320, H/s, W/s), s = output stride
        logits = self.head(self.ppm(high))  # (B, K, H/s, W/s)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)

    def forward_aux(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Main and auxiliary logits, both ``(B, K, H, W)`` (training: the paper weighs the
        auxiliary loss by 0.4)."""
        low, high = self.backbone(x)
        logits = self.head(self.ppm(high))  # (B, K, H/s, W/s)
        aux = self.aux_head(low)  # (B, K, H/s, W/s)
        size = x.shape[-2:]
        return (
            F.interpolate(logits, size=size, mode="bilinear", align_corners=False),
            F.interpolate(aux, size=size, mode="bilinear", align_corners=False),
        )


# ----------------------------------------------------------------------------- DeepLabV3
class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: a 1x1 conv, 3x3 convs at ``rates``, and image-level
    pooling, concatenated and projected to ``width`` channels.

    Args:
        in_channels: Channels of the features.
        width: Channels of every branch and of the output.
        rates: Dilations of the 3x3 branches (the paper: 6, 12, 18 at output stride 16).
    """

    def __init__(self, in_channels: int, width: int, rates: tuple[int, ...] = (6, 12, 18)) -> None:
        super().__init__()
        atrous = [
            nn.Sequential(
                nn.Conv2d(in_channels, width, 3, padding=r, dilation=r, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            )
            for r in rates
        ]
        self.branches = nn.ModuleList([ConvBnAct(in_channels, width, 1), *atrous])
        # No BN after the global pool: one value per channel and image (see PyramidPooling).
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, width, 1), nn.ReLU()
        )
        self.project = nn.Sequential(
            ConvBnAct((len(rates) + 2) * width, width, 1), nn.Dropout2d(0.1)
        )

    def forward(self, x: Tensor) -> Tensor:
        pooled = self.image_pool(x).expand(-1, -1, *x.shape[-2:])  # (B, width, h, w)
        parts = [branch(x) for branch in self.branches]  # each (B, width, h, w)
        return self.project(torch.cat([*parts, pooled], 1))  # (B, width, h, w)


class DeepLabV3(nn.Module):
    """DeepLabV3: MobileNetV2 (output stride 16 or 8), ASPP, a classifier, bilinear upsampling.

    Taught in lessons/20_segmentation.py.

    Args:
        in_channels: Channels of the input image.
        num_classes: Output classes K (background included).
        width: Channels of the ASPP branches and the head.
        pretrained: ImageNet weights for the backbone (offline, from ``$TORCH_HOME``).
        output_stride: 16 (the paper's default) or 8.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        width: int,
        pretrained: bool,
        output_stride: int,
    ) -> None:
        super().__init__()
        self.backbone = MobileNetV2Backbone(
            in_channels=in_channels, output_stride=output_stride, pretrained=pretrained
        )
        self.aspp = ASPP(320, width)
        self.head = classifier_head(width, width, num_classes, dropout=0.0)

    def forward(self, x: Tensor) -> Tensor:
        _, high = self.backbone(x)  # (B, 320, H/s, W/s)
        logits = self.head(self.aspp(high))  # (B, K, H/s, W/s)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


# ------------------------------------------------------------------------------ builders
@register_model
def unet(*, in_channels: int = 1, num_classes: int = 3, width: int = 16, depth: int = 4) -> UNet:
    """U-Net with padded convs (about 1.9 M parameters at width 16, depth 4; the paper's
    width 64 has 31 M)."""
    return UNet(in_channels=in_channels, num_classes=num_classes, width=width, depth=depth)


@register_model
def pspnet_mobilenetv2(
    *,
    in_channels: int = 3,
    num_classes: int = 21,
    width: int = 128,
    pretrained: bool = False,
    output_stride: int = 8,
) -> PSPNet:
    """PSPNet on MobileNetV2 with an auxiliary head (about 2.7 M parameters)."""
    return PSPNet(
        in_channels=in_channels,
        num_classes=num_classes,
        width=width,
        pretrained=pretrained,
        output_stride=output_stride,
    )


@register_model
def deeplabv3_mobilenetv2(
    *,
    in_channels: int = 3,
    num_classes: int = 21,
    width: int = 128,
    pretrained: bool = False,
    output_stride: int = 16,
) -> DeepLabV3:
    """DeepLabV3 (ASPP) on MobileNetV2 (about 3.2 M parameters)."""
    return DeepLabV3(
        in_channels=in_channels,
        num_classes=num_classes,
        width=width,
        pretrained=pretrained,
        output_stride=output_stride,
    )
