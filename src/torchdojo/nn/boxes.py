"""Box arithmetic for single-stage detectors: SSD's default boxes, matching, encoding, hard
negative mining, the multibox loss, FCOS targets and loss, and NMS post-processing.

This is today's API version of the SSD of seed 003 ch2 (Liu et al., 2016,
https://arxiv.org/abs/1512.02325). The book's ``Detect`` was a legacy ``torch.autograd.Function``
with a non-static ``forward``, which torch >= 1.5 refuses ("Legacy autograd function with
non-static forward method is deprecated"); decoding is a plain function here, and NMS is
:func:`torchvision.ops.batched_nms` in :func:`postprocess`, outside the model, so the same code
runs after the eager model and after its ONNX export. Taught in lessons/19_object_detection.py.

Boxes are ``xyxy`` (corners) or ``cxcywh`` (centre, size); every function says which. Encoding
is scale-free, so anchors and ground truth only need to share one frame (pixels or [0, 1]).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision import ops

VARIANCES = (0.1, 0.2)  # SSD's scaling of centre and size offsets


# ------------------------------------------------------------------ conversions


def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``(..., 4)`` centre/size boxes to corner boxes."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), -1)


def xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """``(..., 4)`` corner boxes to centre/size boxes."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), -1)


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """IoU matrix ``(N, M)`` of two sets of xyxy boxes (:func:`torchvision.ops.box_iou`)."""
    return ops.box_iou(boxes1, boxes2)


# ---------------------------------------------------------------- default boxes


def default_boxes(
    feature_sizes: Sequence[int | tuple[int, int]],
    image_size: int | tuple[int, int],
    scales: Sequence[float],
    aspect_ratios: Sequence[Sequence[float]],
) -> Tensor:
    """SSD's default boxes (anchors), ``(A, 4)`` cxcywh normalized to [0, 1].

    Level ``k`` (a feature map of ``feature_sizes[k]`` cells) puts at each cell centre, in this
    order: a square of side ``scales[k]``, a square of side ``sqrt(scales[k] * scales[k+1])``,
    and for each ratio ``r`` in ``aspect_ratios[k]`` the boxes ``s*sqrt(r) x s/sqrt(r)`` and
    ``s/sqrt(r) x s*sqrt(r)``. Cells run row by row, boxes fastest: the order of a head's
    ``(B, boxes*4, H, W)`` output permuted to ``(B, H, W, boxes*4)``. Sizes are fractions of
    the image side along each axis (``image_size`` is only used to check the shapes).

    Args:
        feature_sizes: Each level's grid, ``n`` (square) or ``(h, w)``.
        image_size: The input side, or ``(H, W)``.
        scales: ``len(feature_sizes) + 1`` box sides as fractions of the image (the last one
            only sets the extra square of the last level).
        aspect_ratios: Per level, the ratios besides 1 (e.g. ``[2]`` or ``[2, 3]``).

    Returns:
        ``(A, 4)`` boxes, clipped to [0, 1]; ``A = sum(h*w*(2 + 2*len(ratios)))``.
    """
    if len(scales) != len(feature_sizes) + 1 or len(aspect_ratios) != len(feature_sizes):
        raise ValueError(
            f"need {len(feature_sizes) + 1} scales and {len(feature_sizes)} aspect-ratio lists, "
            f"got {len(scales)} and {len(aspect_ratios)}"
        )
    del image_size  # sizes are fractions of the image; kept in the signature for clarity
    out: list[list[float]] = []
    for k, size in enumerate(feature_sizes):
        fh, fw = (size, size) if isinstance(size, int) else size
        s, s_next = scales[k], scales[k + 1]
        shapes = [(s, s), (math.sqrt(s * s_next),) * 2]
        for r in aspect_ratios[k]:
            shapes += [(s * math.sqrt(r), s / math.sqrt(r)), (s / math.sqrt(r), s * math.sqrt(r))]
        for i, j in itertools.product(range(fh), range(fw)):
            cx, cy = (j + 0.5) / fw, (i + 0.5) / fh
            out.extend([cx, cy, w, h] for w, h in shapes)
    return torch.tensor(out, dtype=torch.float32).clamp_(0.0, 1.0)


# -------------------------------------------------------------------- matching


def match(
    gt_boxes: Tensor, gt_labels: Tensor, anchors: Tensor, iou_thresh: float = 0.5
) -> tuple[Tensor, Tensor]:
    """Assign each anchor a ground-truth box, or background, as SSD does.

    An anchor whose best IoU with any box reaches ``iou_thresh`` takes that box; then each box
    takes its own best anchor whatever the IoU, so no box goes unmatched (a tiny box may
    overlap every anchor below the threshold).

    Args:
        gt_boxes: ``(N, 4)`` xyxy, in the anchors' frame.
        gt_labels: ``(N,)`` int64 in 1..C.
        anchors: ``(A, 4)`` cxcywh.
        iou_thresh: The IoU from which an anchor is positive.

    Returns:
        ``labels (A,)`` int64 (0: background) and ``boxes (A, 4)`` xyxy, the matched box of
        each anchor (zeros for background anchors).
    """
    num_anchors = anchors.shape[0]
    if gt_boxes.numel() == 0:
        return (
            torch.zeros(num_anchors, dtype=torch.int64, device=anchors.device),
            torch.zeros(num_anchors, 4, device=anchors.device),
        )
    iou = box_iou(gt_boxes, cxcywh_to_xyxy(anchors))  # (N, A)
    best_iou, best_gt = iou.max(0)  # (A,), (A,): each anchor's best box
    best_anchor = iou.argmax(1)  # (N,): each box's best anchor
    best_iou[best_anchor] = 2.0  # forced: above any threshold
    best_gt[best_anchor] = torch.arange(len(gt_boxes), device=anchors.device)
    labels = gt_labels[best_gt].clone()
    labels[best_iou < iou_thresh] = 0
    return labels, gt_boxes[best_gt]


def encode(matched: Tensor, anchors: Tensor, variances: tuple[float, float] = VARIANCES) -> Tensor:
    """SSD offsets ``(..., 4)`` of xyxy boxes from cxcywh anchors: ``((cx-acx)/(v0*aw),
    (cy-acy)/(v0*ah), log(w/aw)/v1, log(h/ah)/v1)``."""
    box = xyxy_to_cxcywh(matched)
    centre = (box[..., :2] - anchors[..., :2]) / (variances[0] * anchors[..., 2:])
    size = torch.log(box[..., 2:].clamp_min(1e-6) / anchors[..., 2:]) / variances[1]
    return torch.cat((centre, size), -1)


def decode(offsets: Tensor, anchors: Tensor, variances: tuple[float, float] = VARIANCES) -> Tensor:
    """The inverse of :func:`encode`: xyxy boxes ``(..., 4)`` from offsets and cxcywh anchors."""
    centre = anchors[..., :2] + offsets[..., :2] * variances[0] * anchors[..., 2:]
    size = anchors[..., 2:] * torch.exp((offsets[..., 2:] * variances[1]).clamp(max=8.0))
    return cxcywh_to_xyxy(torch.cat((centre, size), -1))


# ---------------------------------------------------------------------- losses


def hard_negative_mining(cls_loss: Tensor, positive: Tensor, neg_pos_ratio: int = 3) -> Tensor:
    """Which anchors the classification loss counts: every positive and, per image, the
    ``neg_pos_ratio`` x as many negatives with the highest loss (SSD's 3:1).

    Args:
        cls_loss: ``(B, A)`` per-anchor cross-entropy.
        positive: ``(B, A)`` bool, anchors matched to a box.
        neg_pos_ratio: Negatives kept per positive.

    Returns:
        ``(B, A)`` bool mask of the anchors that count.
    """
    num_pos = positive.sum(1, keepdim=True)  # (B, 1)
    num_neg = torch.minimum(num_pos * neg_pos_ratio, positive.shape[1] - num_pos)
    loss = cls_loss.detach().masked_fill(positive, -math.inf)  # positives never count as negatives
    order = loss.sort(dim=1, descending=True, stable=True).indices  # (B, A)
    rank = order.argsort(dim=1, stable=True)  # (B, A): each anchor's place in that order
    return positive | (rank < num_neg)


def multibox_loss(
    cls_logits: Tensor,
    box_reg: Tensor,
    targets: Sequence[dict[str, Tensor]],
    anchors: Tensor,
    *,
    iou_thresh: float = 0.5,
    neg_pos_ratio: int = 3,
    box_loss: str = "smooth_l1",
) -> tuple[Tensor, dict[str, Tensor]]:
    """SSD's multibox loss: cross-entropy with background over positives and mined negatives,
    plus a box loss over positives, both divided by the number of positives.

    Args:
        cls_logits: ``(B, A, C+1)``, column 0 the background.
        box_reg: ``(B, A, 4)`` encoded offsets (:func:`encode`).
        targets: Per image ``{"boxes": (N, 4) xyxy, "labels": (N,) in 1..C}``.
        anchors: ``(A, 4)`` cxcywh in the targets' frame (pixels).
        iou_thresh: Matching IoU (:func:`match`).
        neg_pos_ratio: Mined negatives per positive (:func:`hard_negative_mining`).
        box_loss: ``"smooth_l1"`` on the offsets (SSD) or ``"giou"`` on the decoded boxes.

    Returns:
        The total loss and its parts ``{"cls": ..., "box": ...}`` (detached).
    """
    matched = [match(t["boxes"], t["labels"], anchors, iou_thresh) for t in targets]
    labels = torch.stack([m[0] for m in matched])  # (B, A)
    boxes = torch.stack([m[1] for m in matched])  # (B, A, 4)
    positive = labels > 0
    num_pos = positive.sum().clamp_min(1).float()
    ce = F.cross_entropy(cls_logits.flatten(0, 1), labels.flatten(), reduction="none")
    ce = ce.view_as(labels)  # (B, A)
    keep = hard_negative_mining(ce, positive, neg_pos_ratio)
    loss_cls = ce[keep].sum() / num_pos
    if box_loss == "giou":
        pred = decode(box_reg[positive], anchors.expand_as(box_reg)[positive])
        loss_box = ops.generalized_box_iou_loss(pred, boxes[positive], reduction="sum") / num_pos
    elif box_loss == "smooth_l1":
        target = encode(boxes[positive], anchors.expand_as(box_reg)[positive])
        loss_box = F.smooth_l1_loss(box_reg[positive], target, reduction="sum") / num_pos
    else:
        raise ValueError(f"box_loss={box_loss!r}: use 'smooth_l1' or 'giou'")
    return loss_cls + loss_box, {"cls": loss_cls.detach(), "box": loss_box.detach()}


def fcos_targets(
    points: Tensor,
    strides: Tensor,
    size_ranges: Tensor,
    gt_boxes: Tensor,
    gt_labels: Tensor,
    *,
    center_radius: float = 1.5,
) -> tuple[Tensor, Tensor]:
    """FCOS's assignment of one image (Tian et al., 2019, https://arxiv.org/abs/1904.01355).

    A location is positive for a box when it lies inside the box, within ``center_radius``
    strides of its centre, and the box's largest side distance fits the location's level
    (``size_ranges``); among several boxes it takes the smallest.

    Args:
        points: ``(P, 2)`` location centres ``(x, y)`` in pixels.
        strides: ``(P,)`` each location's stride.
        size_ranges: ``(P, 2)`` the ``max(l, t, r, b)`` range each location regresses.
        gt_boxes: ``(N, 4)`` xyxy pixels.
        gt_labels: ``(N,)`` in 1..C.
        center_radius: Centre sampling radius in strides.

    Returns:
        ``labels (P,)`` (0: background) and the matched ``boxes (P, 4)`` xyxy.
    """
    num = points.shape[0]
    if gt_boxes.numel() == 0:
        return torch.zeros(num, dtype=torch.int64, device=points.device), points.new_zeros(num, 4)
    x, y = points[:, 0:1], points[:, 1:2]  # (P, 1)
    x1, y1, x2, y2 = gt_boxes.unbind(1)  # each (N,)
    ltrb = torch.stack((x - x1, y - y1, x2 - x, y2 - y), -1)  # (P, N, 4)
    inside = ltrb.min(-1).values > 0
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    radius = strides[:, None] * center_radius  # (P, 1)
    near_centre = ((x - cx).abs() < radius) & ((y - cy).abs() < radius)
    reach = ltrb.max(-1).values  # (P, N)
    fits = (reach >= size_ranges[:, 0:1]) & (reach <= size_ranges[:, 1:2])
    area = ((x2 - x1) * (y2 - y1))[None].expand(num, -1)  # (P, N)
    area = area.masked_fill(~(inside & near_centre & fits), math.inf)
    best_area, best = area.min(1)  # (P,)
    labels = gt_labels[best].clone()
    labels[torch.isinf(best_area)] = 0
    return labels, gt_boxes[best]


def fcos_loss(
    cls_logits: Tensor,
    ltrb: Tensor,
    centerness: Tensor,
    targets: Sequence[dict[str, Tensor]],
    points: Tensor,
    strides: Tensor,
    size_ranges: Tensor,
) -> tuple[Tensor, dict[str, Tensor]]:
    """FCOS's loss: sigmoid focal loss over every location and class, GIoU on the positives'
    boxes and binary cross-entropy on their centerness, each divided by the positives.

    Args:
        cls_logits: ``(B, P, C)`` one logit per class (no background column).
        ltrb: ``(B, P, 4)`` predicted distances to the box sides, pixels, >= 0.
        centerness: ``(B, P)`` logits.
        targets: Per image ``{"boxes", "labels"}`` as in :func:`multibox_loss`.
        points, strides, size_ranges: As in :func:`fcos_targets`.

    Returns:
        The total loss and ``{"cls", "box", "ctr"}``.
    """
    assigned = [
        fcos_targets(points, strides, size_ranges, t["boxes"], t["labels"]) for t in targets
    ]
    labels = torch.stack([a[0] for a in assigned])  # (B, P)
    boxes = torch.stack([a[1] for a in assigned])  # (B, P, 4)
    positive = labels > 0
    num_pos = positive.sum().clamp_min(1).float()
    onehot = F.one_hot(labels, cls_logits.shape[-1] + 1)[..., 1:].to(cls_logits.dtype)
    loss_cls = ops.sigmoid_focal_loss(cls_logits, onehot, reduction="sum") / num_pos
    pts = points.expand(len(targets), -1, -1)[positive]  # (n, 2)
    pred = ltrb[positive]
    pred_boxes = torch.cat((pts - pred[:, :2], pts + pred[:, 2:]), 1)
    gt = boxes[positive]
    gt_ltrb = torch.cat((pts - gt[:, :2], gt[:, 2:] - pts), 1).clamp_min(0)  # (n, 4)
    lr, tb = gt_ltrb[:, 0::2], gt_ltrb[:, 1::2]
    ctr_target = torch.sqrt(
        (lr.min(1).values / lr.max(1).values.clamp_min(1e-6))
        * (tb.min(1).values / tb.max(1).values.clamp_min(1e-6))
    )
    giou = ops.generalized_box_iou_loss(pred_boxes, gt, reduction="none")
    loss_box = (giou * ctr_target).sum() / ctr_target.sum().clamp_min(1e-6)
    loss_ctr = (
        F.binary_cross_entropy_with_logits(centerness[positive], ctr_target, reduction="sum")
        / num_pos
    )
    total = loss_cls + loss_box + loss_ctr
    return total, {"cls": loss_cls.detach(), "box": loss_box.detach(), "ctr": loss_ctr.detach()}


# -------------------------------------------------------------- post-processing


def postprocess(
    boxes: Tensor,
    scores: Tensor,
    *,
    score_thresh: float = 0.05,
    iou_thresh: float = 0.5,
    max_detections: int = 100,
    pre_nms_top_k: int = 1000,
) -> list[dict[str, Tensor]]:
    """Detections per image from a detector's decoded output: per-class scores above
    ``score_thresh``, the ``pre_nms_top_k`` best, class-wise NMS
    (:func:`torchvision.ops.batched_nms`), the ``max_detections`` best.

    Args:
        boxes: ``(B, A, 4)`` xyxy pixels.
        scores: ``(B, A, C)`` per-class probabilities (no background column).
        score_thresh: Lowest score kept.
        iou_thresh: NMS IoU: a box overlapping a better one of its class more is dropped.
        max_detections: Detections kept per image.
        pre_nms_top_k: Candidates (box, class pairs) that enter NMS per image.

    Returns:
        Per image ``{"boxes": (n, 4), "scores": (n,), "labels": (n,) int64 in 1..C}``, best first.
    """
    out: list[dict[str, Tensor]] = []
    num_classes = scores.shape[-1]
    for img_boxes, img_scores in zip(boxes, scores, strict=True):
        flat = img_scores.flatten()  # (A*C,)
        keep = torch.nonzero(flat > score_thresh).flatten()
        top = flat[keep].topk(min(pre_nms_top_k, keep.numel())).indices
        keep = keep[top]
        anchor, label = keep // num_classes, keep % num_classes
        cand_boxes, cand_scores = img_boxes[anchor], flat[keep]
        kept = ops.batched_nms(cand_boxes, cand_scores, label, iou_thresh)[:max_detections]
        out.append(
            {"boxes": cand_boxes[kept], "scores": cand_scores[kept], "labels": label[kept] + 1}
        )
    return out
