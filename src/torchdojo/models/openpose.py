"""OpenPose, small: part heatmaps and part affinity fields refined in stages.

Cao et al., 2017, "Realtime Multi-Person 2D Pose Estimation using Part Affinity Fields"
(https://arxiv.org/abs/1611.08050); seed 003 ch4. Taught in lessons/21_pose.py; recipe:
pose_estimation.

The paper's network: VGG-19's first ten layers give features F at 1/8 of the input; stage 1
predicts keypoint heatmaps S and limb fields L from F in two branches; every later stage sees
``F, S, L`` of the stage before and refines both. The loss (an L2 distance to the targets) is
summed over all stages, which feeds gradients to the early stages ("intermediate
supervision"). This version keeps that structure at a CPU's size: a six-layer VGG-style
backbone with batch norm to 1/4 of the input (48 channels by default), and branches of
depthwise-separable 5 x 5 convolutions in place of the paper's 7 x 7 ones (defaults: two
stages, 0.14 M parameters). Decoding (peaks, PAF line integrals, greedy grouping) is
:func:`torchdojo.nn.pose.decode_poses`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from torchdojo.models.registry import register_model
from torchdojo.nn import ConvBnAct

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STRIDE = 4  # input pixels per output cell


class SeparableBlock(nn.Sequential):
    """Depthwise ``k x k`` conv then pointwise 1 x 1 conv, each with BN and ReLU.

    Args:
        channels: Channels in and out.
        kernel_size: Side of the depthwise kernel.
    """

    def __init__(self, channels: int, kernel_size: int = 5) -> None:
        super().__init__(
            ConvBnAct(channels, channels, kernel_size, groups=channels),
            ConvBnAct(channels, channels, 1),
        )


class Branch(nn.Sequential):
    """One branch of a stage: a 1 x 1 conv to ``width``, ``depth`` separable blocks, and a
    1 x 1 conv to the ``out_channels`` maps (linear, as the paper's regression outputs)."""

    def __init__(self, in_channels: int, out_channels: int, *, width: int, depth: int) -> None:
        super().__init__(
            ConvBnAct(in_channels, width, 1),
            *[SeparableBlock(width) for _ in range(depth)],
            ConvBnAct(width, width, 1),
            nn.Conv2d(width, out_channels, 1),
        )


class Stage(nn.Module):
    """A heatmap branch and a PAF branch on the same input.

    Args:
        in_channels: Channels of the stage input (features, plus the previous stage's maps).
        num_heatmaps: Keypoints + 1 (background).
        num_fields: 2 x limbs.
        width: Channels inside the branches.
        depth: Separable blocks per branch.
    """

    def __init__(
        self, in_channels: int, num_heatmaps: int, num_fields: int, *, width: int, depth: int
    ) -> None:
        super().__init__()
        self.heatmaps = Branch(in_channels, num_heatmaps, width=width, depth=depth)
        self.pafs = Branch(in_channels, num_fields, width=width, depth=depth)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.heatmaps(x), self.pafs(x)


class OpenPose(nn.Module):
    """Backbone, stage 1 and refinement stages; ``forward`` gives the last stage's maps.

    Taught in lessons/21_pose.py. Inputs are images in [0, 1]; the model normalizes them with
    ImageNet's mean and std inside.

    Args:
        num_keypoints: K; the heatmaps have K + 1 channels (background last).
        num_limbs: L; the PAFs have 2 L channels (x, y per limb).
        in_channels: Channels of the input image.
        width: Channels of the features and the branches.
        stages: Stage 1 plus ``stages - 1`` refinement stages.
        depth: Separable blocks per branch.
    """

    def __init__(
        self,
        *,
        num_keypoints: int = 17,
        num_limbs: int = 19,
        in_channels: int = 3,
        width: int = 48,
        stages: int = 2,
        depth: int = 2,
    ) -> None:
        super().__init__()
        mean = torch.tensor(
            IMAGENET_MEAN[:in_channels] if in_channels == 3 else [0.5] * in_channels
        )
        std = torch.tensor(IMAGENET_STD[:in_channels] if in_channels == 3 else [0.25] * in_channels)
        self.mean: Tensor
        self.std: Tensor
        self.register_buffer("mean", mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, -1, 1, 1), persistent=False)
        half = width // 2
        self.backbone = nn.Sequential(
            ConvBnAct(in_channels, half, 3, stride=2),  # (B, w/2, H/2, W/2)
            ConvBnAct(half, half, 3),
            ConvBnAct(half, width, 3, stride=2),  # (B, w, H/4, W/4)
            ConvBnAct(width, width, 3),
            ConvBnAct(width, width, 3),
            ConvBnAct(width, width, 3),
        )
        num_heatmaps, num_fields = num_keypoints + 1, 2 * num_limbs
        maps = num_heatmaps + num_fields
        self.stage_modules = nn.ModuleList(
            Stage(width + (maps if t else 0), num_heatmaps, num_fields, width=width, depth=depth)
            for t in range(stages)
        )

    def stages(self, x: Tensor) -> list[tuple[Tensor, Tensor]]:
        """``(heatmaps (B, K + 1, H/4, W/4), pafs (B, 2 L, H/4, W/4))`` of every stage, in order
        (the training loss sums over them)."""
        features = self.backbone((x - self.mean) / self.std)  # (B, width, H/4, W/4)
        outputs = [self.stage_modules[0](features)]
        for stage in self.stage_modules[1:]:
            heat, fields = outputs[-1]
            outputs.append(stage(torch.cat([features, heat, fields], 1)))
        return outputs

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.stages(x)[-1]


def pose_loss(
    outputs: list[tuple[Tensor, Tensor]],
    heatmaps: Tensor,
    pafs: Tensor,
    *,
    positive_weight: float = 0.0,
) -> Tensor:
    """The paper's loss: squared error of heatmaps and PAFs, summed over pixels, channels and
    stages, averaged over the batch.

    With ``positive_weight`` w > 0 each cell's error is weighted by ``1 + w * target`` (keypoint
    channels) or ``1 + w * |target|`` (PAFs): the few cells near keypoints and on limbs count
    more than the many empty ones. The minimizer is still the target, but the network leaves
    the "all maps empty" plateau of the plain L2 much sooner; w = 0 is the paper's loss.

    Args:
        outputs: ``model.stages(x)``.
        heatmaps: ``(B, K + 1, h, w)`` targets, background last.
        pafs: ``(B, 2 L, h, w)`` targets.
        positive_weight: Extra weight of the cells that hold a keypoint or a limb.
    """
    B = heatmaps.shape[0]
    heat_weight = 1 + positive_weight * heatmaps  # (B, K + 1, h, w)
    heat_weight[:, -1] = 1  # the background channel is 1 on the empty cells
    paf_weight = 1 + positive_weight * pafs.abs()  # (B, 2 L, h, w)
    total = heatmaps.new_zeros(())
    for heat, fields in outputs:
        total = (
            total
            + (heat_weight * (heat.float() - heatmaps).square()).sum()
            + (paf_weight * (fields.float() - pafs).square()).sum()
        )
    return total / B


@register_model
def openpose_small(
    *,
    num_classes: int = 17,
    num_limbs: int = 19,
    in_channels: int = 3,
    width: int = 48,
    stages: int = 2,
    depth: int = 2,
) -> OpenPose:
    """OpenPose at a CPU's size; ``num_classes`` is the number of keypoints K (COCO's 17), so
    ``forward`` gives ``(heatmaps (B, K + 1, H/4, W/4), pafs (B, 2 L, H/4, W/4))``."""
    return OpenPose(
        num_keypoints=num_classes,
        num_limbs=num_limbs,
        in_channels=in_channels,
        width=width,
        stages=stages,
        depth=depth,
    )


__all__ = ["STRIDE", "OpenPose", "openpose_small", "pose_loss"]
