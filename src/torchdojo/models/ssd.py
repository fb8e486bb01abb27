"""Single-stage detectors: SSD (VGG-style, as seed 003 ch2 builds it), SSDlite on MobileNetV2,
and an anchor-free FCOS head on MobileNetV2.

SSD (Liu et al., 2016, https://arxiv.org/abs/1512.02325) predicts, at every cell of several
feature maps, class scores and box offsets for a fixed set of default boxes; SSDlite (Sandler
et al., 2018, https://arxiv.org/abs/1801.04381) swaps the 3x3 heads for depthwise-separable
ones on a MobileNetV2 backbone. FCOS (Tian et al., 2019, https://arxiv.org/abs/1904.01355)
has no anchors: every location of a small feature pyramid predicts class scores, its distances
to the four box sides and a "centerness" that down-weights boxes predicted far from the centre.

Every detector here follows the dense contract: images are float ``(B, 3, H, W)`` in [0, 1]
(normalized inside with ImageNet statistics), ``forward(x) -> (boxes (B, A, 4) xyxy pixels,
scores (B, A, C))`` decoded and before NMS (:func:`torchdojo.nn.boxes.postprocess` does NMS),
and ``head_outputs(x)`` gives the raw outputs and the anchors or locations the loss needs.
Taught in lessons/19_object_detection.py; trained by the ``object-detection`` recipe.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchdojo.models.registry import register_model
from torchdojo.nn import ConvBnAct
from torchdojo.nn.boxes import decode, default_boxes

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HeadFn = Callable[[int, int], nn.Module]  # (in_channels, out_channels) -> head


# ----------------------------------------------------------------- backbones


def mobilenet_v2_features(*, pretrained: bool) -> nn.Sequential:
    """torchvision's MobileNetV2 ``features`` (19 blocks, 1280 channels at stride 32), with the
    ImageNet weights from ``$TORCH_HOME/hub/checkpoints`` when ``pretrained``.

    Raises:
        RuntimeError: When ``pretrained`` and the weights are neither cached nor downloadable
            (the one-line message of :mod:`torchdojo.models.hub`).
    """
    from torchdojo.models.hub import create_hub_model

    weights = "IMAGENET1K_V1" if pretrained else None
    return create_hub_model("tv:mobilenet_v2", weights=weights).features  # type: ignore[return-value]


class L2Norm(nn.Module):
    """Scale each location's channel vector to unit length, times a learned per-channel weight
    (SSD's normalization of VGG's conv4_3, whose activations are larger than the later ones')."""

    def __init__(self, channels: int, scale: float = 20.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), scale))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=1, eps=1e-10) * self.weight[None, :, None, None]


def extra_block(in_channels: int, out_channels: int, *, depthwise: bool) -> nn.Sequential:
    """An extra SSD layer halving the map: 1x1 squeeze, then a 3x3 stride-2 conv (depthwise +
    1x1 for SSDlite)."""
    mid = out_channels // 2
    if depthwise:
        return nn.Sequential(
            ConvBnAct(in_channels, mid, 1, act=nn.ReLU6),
            ConvBnAct(mid, mid, 3, stride=2, groups=mid, act=nn.ReLU6),
            ConvBnAct(mid, out_channels, 1, act=nn.ReLU6),
        )
    return nn.Sequential(
        nn.Conv2d(in_channels, mid, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(mid, out_channels, 3, stride=2, padding=1),
        nn.ReLU(inplace=True),
    )


def separable_head(in_channels: int, out_channels: int) -> nn.Module:
    """SSDlite's head: 3x3 depthwise conv, BN, ReLU6, then a 1x1 conv to the outputs."""
    return nn.Sequential(
        ConvBnAct(in_channels, in_channels, 3, groups=in_channels, act=nn.ReLU6),
        nn.Conv2d(in_channels, out_channels, 1),
    )


def conv_head(in_channels: int, out_channels: int) -> nn.Module:
    """SSD's head: one 3x3 conv to the outputs."""
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


def vgg_stages(width_mult: float) -> tuple[list[nn.Module], list[int]]:
    """The book's VGG-16 trunk cut in two: up to conv4_3 (stride 8) and up to conv7 (stride 16,
    pool5 3x3/1 and a dilated conv6 instead of the fully connected layers)."""

    def w(c: int) -> int:
        return max(8, int(c * width_mult))

    def convs(cin: int, widths: Sequence[int | str]) -> tuple[list[nn.Module], int]:
        layers: list[nn.Module] = []
        for item in widths:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            else:
                layers += [nn.Conv2d(cin, w(int(item)), 3, padding=1), nn.ReLU(inplace=True)]
                cin = w(int(item))
        return layers, cin

    head, c4 = convs(3, [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512])
    tail, c5 = convs(c4, ["M", 512, 512, 512])
    tail += [
        nn.MaxPool2d(3, 1, 1),
        nn.Conv2d(c5, w(1024), 3, padding=6, dilation=6),  # conv6
        nn.ReLU(inplace=True),
        nn.Conv2d(w(1024), w(1024), 1),  # conv7
        nn.ReLU(inplace=True),
    ]
    return [nn.Sequential(*head), nn.Sequential(*tail)], [c4, w(1024)]


# ---------------------------------------------------------------------- SSD


class SSD(nn.Module):
    """Feature stages, one class head and one box head per stage, default boxes per map.

    Args:
        stages: Run in turn; each stage's output is a feature map the heads read.
        taps: Per stage, what the heads see of its output (``L2Norm`` on VGG's conv4_3, else
            ``Identity``).
        channels: Each stage's output channels.
        num_classes: C, object classes without the background.
        image_size: The input side the anchors were designed for (documentation; the
            anchors follow the actual input's feature-map sizes).
        head: Builds a head from ``(in_channels, out_channels)``.
        scales: ``len(stages) + 1`` default-box sides, fractions of the image.
        aspect_ratios: Per stage, the ratios besides 1.
    """

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        stages: Sequence[nn.Module],
        taps: Sequence[nn.Module],
        channels: Sequence[int],
        *,
        num_classes: int,
        image_size: int,
        head: HeadFn,
        scales: Sequence[float],
        aspect_ratios: Sequence[Sequence[float]],
    ) -> None:
        super().__init__()
        self.num_classes, self.image_size = num_classes, image_size
        self.scales, self.aspect_ratios = list(scales), [list(r) for r in aspect_ratios]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.stages = nn.ModuleList(stages)
        self.taps = nn.ModuleList(taps)
        boxes = [2 + 2 * len(r) for r in aspect_ratios]  # default boxes per cell
        self.cls_heads = nn.ModuleList(
            head(c, k * (num_classes + 1)) for c, k in zip(channels, boxes, strict=True)
        )
        self.box_heads = nn.ModuleList(head(c, k * 4) for c, k in zip(channels, boxes, strict=True))
        for module in [*self.cls_heads.modules(), *self.box_heads.modules()]:
            if isinstance(module, nn.Conv2d) and module.groups == 1:
                nn.init.normal_(module.weight, std=0.03)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        self._anchors: dict[tuple[int, ...], Tensor] = {}

    def features(self, x: Tensor) -> list[Tensor]:
        """The maps the heads read, largest first."""
        x = (x - self.mean) / self.std
        maps = []
        for stage, tap in zip(self.stages, self.taps, strict=True):
            x = stage(x)
            maps.append(tap(x))
        return maps

    def anchors(self, maps: Sequence[Tensor], height: int, width: int) -> Tensor:
        """``(A, 4)`` cxcywh default boxes in pixels of a ``height x width`` input (box sides
        are fractions of the short side, so a 1:1 box is square on any input)."""
        sizes = [(int(m.shape[-2]), int(m.shape[-1])) for m in maps]
        key = (height, width, *(s for hw in sizes for s in hw))
        if key not in self._anchors:
            boxes = default_boxes(sizes, (height, width), self.scales, self.aspect_ratios)
            short = min(height, width)  # sides relative to the short side: squares stay square
            self._anchors[key] = boxes * torch.tensor([width, height, short, short])
        return self._anchors[key].to(maps[0].device)

    def head_outputs(self, x: Tensor) -> dict[str, Tensor]:
        """Raw outputs: ``cls_logits (B, A, C+1)`` (column 0: background), ``box_reg (B, A, 4)``
        (SSD offsets) and ``anchors (A, 4)`` cxcywh pixels."""
        maps = self.features(x)
        B = x.shape[0]
        # each head: (B, k*D, h, w) -> (B, h, w, k*D) -> (B, h*w*k, D)
        cls = [
            h(m).permute(0, 2, 3, 1).reshape(B, -1, self.num_classes + 1)
            for h, m in zip(self.cls_heads, maps, strict=True)
        ]
        reg = [
            h(m).permute(0, 2, 3, 1).reshape(B, -1, 4)
            for h, m in zip(self.box_heads, maps, strict=True)
        ]
        return {
            "cls_logits": torch.cat(cls, 1),  # (B, A, C+1)
            "box_reg": torch.cat(reg, 1),  # (B, A, 4)
            "anchors": self.anchors(maps, x.shape[-2], x.shape[-1]),  # (A, 4)
        }

    def decode(self, outputs: dict[str, Tensor], height: int, width: int) -> tuple[Tensor, Tensor]:
        """Boxes ``(B, A, 4)`` xyxy clipped to the image, class probabilities ``(B, A, C)``."""
        boxes = decode(outputs["box_reg"], outputs["anchors"])
        limit = torch.tensor([width, height, width, height], device=boxes.device)
        boxes = torch.minimum(boxes.clamp_min(0), limit)
        return boxes, outputs["cls_logits"].softmax(-1)[..., 1:]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.decode(self.head_outputs(x), x.shape[-2], x.shape[-1])


# --------------------------------------------------------------------- FCOS


class Scale(nn.Module):
    """A learned scalar multiplier (FCOS: one per pyramid level on the shared box head)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


def sep_conv_gn(channels: int) -> nn.Sequential:
    """Depthwise 3x3 + 1x1 conv, GroupNorm, ReLU: one layer of FCOS's towers, made light."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
        nn.Conv2d(channels, channels, 1, bias=False),
        nn.GroupNorm(8, channels),
        nn.ReLU(inplace=True),
    )


class FCOS(nn.Module):
    """MobileNetV2 maps at strides 8, 16 and 32, a top-down feature pyramid, and FCOS's shared
    head: per location C class logits, ``l, t, r, b`` distances and a centerness logit.

    Args:
        backbone: torchvision MobileNetV2 ``features``.
        num_classes: C.
        image_size: The side the size ranges were chosen for (the recipe's input).
        width: Channels of the pyramid and the head.
        tower: Separable conv layers in each head tower.
    """

    STRIDES = (8, 16, 32)
    SPLITS = (7, 14, 19)  # MobileNetV2 blocks ending at strides 8, 16, 32
    CHANNELS = (32, 96, 1280)
    mean: Tensor
    std: Tensor

    def __init__(
        self,
        backbone: nn.Sequential,
        *,
        num_classes: int,
        image_size: int,
        width: int = 64,
        tower: int = 2,
    ) -> None:
        super().__init__()
        self.num_classes, self.image_size = num_classes, image_size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        starts = (0, *self.SPLITS[:-1])
        self.stages = nn.ModuleList(backbone[a:b] for a, b in zip(starts, self.SPLITS, strict=True))
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in self.CHANNELS)
        self.smooth = nn.ModuleList(sep_conv_gn(width) for _ in self.CHANNELS)
        self.cls_tower = nn.Sequential(*(sep_conv_gn(width) for _ in range(tower)))
        self.box_tower = nn.Sequential(*(sep_conv_gn(width) for _ in range(tower)))
        self.cls_out = nn.Conv2d(width, num_classes, 3, padding=1)
        self.box_out = nn.Conv2d(width, 4, 3, padding=1)
        self.ctr_out = nn.Conv2d(width, 1, 3, padding=1)
        self.scales = nn.ModuleList(Scale() for _ in self.STRIDES)
        for conv in (self.cls_out, self.box_out, self.ctr_out):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)  # type: ignore[arg-type]
        nn.init.constant_(self.cls_out.bias, -math.log((1 - 0.01) / 0.01))  # type: ignore[arg-type]
        self._points: dict[tuple[int, ...], tuple[Tensor, Tensor, Tensor]] = {}

    def pyramid(self, x: Tensor) -> list[Tensor]:
        """P3, P4, P5: ``(B, width, H/s, W/s)`` for s = 8, 16, 32."""
        x = (x - self.mean) / self.std
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        top = self.lateral[2](maps[2])
        p5 = self.smooth[2](top)
        mid = self.lateral[1](maps[1]) + F.interpolate(top, size=maps[1].shape[-2:])
        p4 = self.smooth[1](mid)
        low = self.lateral[0](maps[0]) + F.interpolate(mid, size=maps[0].shape[-2:])
        p3 = self.smooth[0](low)
        return [p3, p4, p5]

    def locations(self, maps: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Each location's centre ``(P, 2)`` in pixels, stride ``(P,)`` and size range
        ``(P, 2)`` (the ``max(l, t, r, b)`` it regresses: 0-64, 64-128, 128+ at 512 px input,
        scaled with ``image_size``)."""
        key = tuple(s for m in maps for s in m.shape[-2:])
        if key not in self._points:
            unit = self.image_size / 512
            bounds = (0.0, 64 * unit, 128 * unit, math.inf)
            points, strides, ranges = [], [], []
            for level, (m, s) in enumerate(zip(maps, self.STRIDES, strict=True)):
                h, w = m.shape[-2:]
                ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
                pts = torch.stack((xs.flatten(), ys.flatten()), 1).float() * s + s // 2
                points.append(pts)  # (h*w, 2)
                strides.append(torch.full((h * w,), float(s)))
                ranges.append(torch.tensor([bounds[level], bounds[level + 1]]).expand(h * w, 2))
            self._points[key] = (torch.cat(points), torch.cat(strides), torch.cat(ranges))
        return tuple(t.to(maps[0].device) for t in self._points[key])  # type: ignore[return-value]

    def head_outputs(self, x: Tensor) -> dict[str, Tensor]:
        """Raw outputs: ``cls_logits (B, P, C)``, ``ltrb (B, P, 4)`` pixels, ``centerness
        (B, P)`` logits, and ``points``, ``strides``, ``size_ranges`` of the P locations."""
        maps = self.pyramid(x)
        B = x.shape[0]
        cls, ltrb, ctr = [], [], []
        for p, scale, stride in zip(maps, self.scales, self.STRIDES, strict=True):
            c, b = self.cls_tower(p), self.box_tower(p)
            # (B, D, h, w) -> (B, h, w, D) -> (B, h*w, D)
            cls.append(self.cls_out(c).permute(0, 2, 3, 1).reshape(B, -1, self.num_classes))
            dist = F.relu(scale(self.box_out(b))) * stride  # (B, 4, h, w) pixels
            ltrb.append(dist.permute(0, 2, 3, 1).reshape(B, -1, 4))
            ctr.append(self.ctr_out(b).reshape(B, -1))
        points, strides, ranges = self.locations(maps)
        return {
            "cls_logits": torch.cat(cls, 1),
            "ltrb": torch.cat(ltrb, 1),
            "centerness": torch.cat(ctr, 1),
            "points": points,
            "strides": strides,
            "size_ranges": ranges,
        }

    def decode(self, outputs: dict[str, Tensor], height: int, width: int) -> tuple[Tensor, Tensor]:
        """Boxes ``(B, P, 4)`` xyxy clipped to the image and scores ``(B, P, C)``: the geometric
        mean of class probability and centerness, as FCOS ranks its boxes."""
        pts, ltrb = outputs["points"], outputs["ltrb"]
        boxes = torch.cat((pts - ltrb[..., :2], pts + ltrb[..., 2:]), -1)
        limit = torch.tensor([width, height, width, height], device=boxes.device)
        boxes = torch.minimum(boxes.clamp_min(0), limit)
        scores = torch.sqrt(
            outputs["cls_logits"].sigmoid() * outputs["centerness"].sigmoid()[..., None]
        )
        return boxes, scores

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.decode(self.head_outputs(x), x.shape[-2], x.shape[-1])


# ------------------------------------------------------------------ builders


def linear_scales(levels: int, min_scale: float, max_scale: float) -> list[float]:
    """``levels + 1`` box sides spaced evenly from ``min_scale`` to ``max_scale`` (SSD eq. 4),
    the last one beyond ``max_scale`` for the extra square of the last level."""
    step = (max_scale - min_scale) / (levels - 1)
    return [min_scale + step * k for k in range(levels + 1)]


@register_model
def ssdlite_mobilenetv2(
    *,
    num_classes: int = 20,
    image_size: int = 320,
    pretrained: bool = False,
    min_scale: float = 0.1,
    max_scale: float = 0.9,
    first_stride: int = 16,
) -> SSD:
    """SSDlite on MobileNetV2: maps at strides 16 and 32 plus four extra layers, depthwise
    heads, 6 default boxes per cell (about 3.3 M parameters with 20 classes).

    Args:
        num_classes: C, object classes without the background.
        image_size: The input side.
        pretrained: Start the backbone from torchvision's ImageNet weights (read from
            ``$TORCH_HOME/hub/checkpoints``, downloaded where a network exists).
        min_scale: Side of the smallest default boxes, a fraction of the image.
        max_scale: Side of the largest.
        first_stride: 16, or 8 to add the stride-8 map of block 6 (32 channels) for small
            objects (blood platelets of ~20 pixels).
    """
    if first_stride not in (8, 16):
        raise ValueError(f"first_stride must be 8 or 16, got {first_stride}")
    features = mobilenet_v2_features(pretrained=pretrained)
    channels = [96, 1280, 512, 256, 256, 128]
    extras = [
        extra_block(cin, cout, depthwise=True)
        for cin, cout in zip(channels[1:-1], channels[2:], strict=True)
    ]
    stages = [features[:14], features[14:], *extras]
    if first_stride == 8:
        stages = [features[:7], features[7:14], *stages[1:]]
        channels = [32, *channels]
    return SSD(
        stages,
        [nn.Identity() for _ in stages],
        channels,
        num_classes=num_classes,
        image_size=image_size,
        head=separable_head,
        scales=linear_scales(len(stages), min_scale, max_scale),
        aspect_ratios=[[2.0, 3.0]] * len(stages),
    )


@register_model
def ssd_vgg(
    *,
    num_classes: int = 20,
    image_size: int = 300,
    pretrained: bool = False,
    width_mult: float = 0.25,
    min_scale: float = 0.1,
    max_scale: float = 0.9,
) -> SSD:
    """The book's SSD300: VGG-16 to conv7, L2Norm on conv4_3, four extra layers, 3x3 heads with
    4 or 6 default boxes per cell; channels times ``width_mult`` so it trains on a CPU.

    Args:
        num_classes: C, object classes without the background.
        image_size: The input side (300 in the book).
        pretrained: Not available (no VGG detection weights offline); must be False.
        width_mult: Multiplier on VGG's widths (1.0: the book's 26 M parameters).
        min_scale: Side of the smallest default boxes, a fraction of the image.
        max_scale: Side of the largest.
    """
    if pretrained:
        raise ValueError("ssd-vgg has no pretrained weights; use pretrained=False")
    (head, tail), (c4, c7) = vgg_stages(width_mult)
    w = [max(8, int(c * width_mult)) for c in (512, 256, 256, 256)]
    extras = [
        extra_block(c7, w[0], depthwise=False),
        extra_block(w[0], w[1], depthwise=False),
        extra_block(w[1], w[2], depthwise=False),
        extra_block(w[2], w[3], depthwise=False),
    ]
    stages = [head, tail, *extras]
    return SSD(
        stages,
        [L2Norm(c4), *(nn.Identity() for _ in range(5))],
        [c4, c7, *w],
        num_classes=num_classes,
        image_size=image_size,
        head=conv_head,
        scales=linear_scales(6, min_scale, max_scale),
        aspect_ratios=[[2.0], [2.0, 3.0], [2.0, 3.0], [2.0, 3.0], [2.0], [2.0]],
    )


@register_model
def fcos_mobilenetv2(
    *, num_classes: int = 20, image_size: int = 320, pretrained: bool = False, width: int = 64
) -> FCOS:
    """Anchor-free FCOS on MobileNetV2 (strides 8, 16, 32), light separable towers.

    Args:
        num_classes: C, object classes.
        image_size: The input side (sets the levels' size ranges).
        pretrained: Start the backbone from torchvision's ImageNet weights.
        width: Channels of the pyramid and head.
    """
    return FCOS(
        mobilenet_v2_features(pretrained=pretrained),
        num_classes=num_classes,
        image_size=image_size,
        width=width,
    )
