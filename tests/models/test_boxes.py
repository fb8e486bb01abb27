"""SSD's box arithmetic against values computed by hand (torchdojo.nn.boxes)."""

from __future__ import annotations

import math

import pytest
import torch

from torchdojo.nn.boxes import (
    cxcywh_to_xyxy,
    decode,
    default_boxes,
    encode,
    fcos_loss,
    fcos_targets,
    hard_negative_mining,
    match,
    multibox_loss,
    postprocess,
    xyxy_to_cxcywh,
)


def test_default_boxes_by_hand() -> None:
    # One 2x2 map, scales 0.2 then 0.8, ratio 2: per cell a 0.2 square, a sqrt(0.16)=0.4
    # square, then 0.2*sqrt2 x 0.2/sqrt2 and its transpose; cells row by row.
    boxes = default_boxes([2], 100, [0.2, 0.8], [[2.0]])
    assert boxes.shape == (2 * 2 * 4, 4)
    r = math.sqrt(2)
    first_cell = torch.tensor(
        [
            [0.25, 0.25, 0.2, 0.2],
            [0.25, 0.25, 0.4, 0.4],
            [0.25, 0.25, 0.2 * r, 0.2 / r],
            [0.25, 0.25, 0.2 / r, 0.2 * r],
        ]
    )
    torch.testing.assert_close(boxes[:4], first_cell)
    assert boxes[4, :2].tolist() == pytest.approx([0.75, 0.25])  # second cell: next column
    assert boxes[8, :2].tolist() == pytest.approx([0.25, 0.75])  # third: next row


def test_default_boxes_count_and_clipping() -> None:
    boxes = default_boxes([(3, 4), 1], (30, 40), [0.5, 0.9, 1.2], [[2.0, 3.0], []])
    assert boxes.shape == (3 * 4 * 6 + 1 * 2, 4)
    assert boxes.min() >= 0 and boxes.max() <= 1  # the 1.2 sides are clipped
    with pytest.raises(ValueError, match="scales"):
        default_boxes([2], 10, [0.2], [[2.0]])


def test_box_conversions_round_trip() -> None:
    xyxy = torch.tensor([[10.0, 20.0, 50.0, 40.0]])
    assert xyxy_to_cxcywh(xyxy).tolist() == [[30.0, 30.0, 40.0, 20.0]]
    torch.testing.assert_close(cxcywh_to_xyxy(xyxy_to_cxcywh(xyxy)), xyxy)


def test_encode_by_hand_and_decode_inverts_it() -> None:
    anchor = torch.tensor([[50.0, 50.0, 20.0, 40.0]])  # cxcywh
    gt = torch.tensor([[42.0, 34.0, 62.0, 74.0]])  # centre (52, 54), size 20 x 40
    # ((52-50)/(0.1*20), (54-50)/(0.1*40), log(1)/0.2, log(1)/0.2) = (1, 1, 0, 0)
    torch.testing.assert_close(encode(gt, anchor), torch.tensor([[1.0, 1.0, 0.0, 0.0]]))
    twice = torch.tensor([[40.0, 30.0, 80.0, 110.0]])  # centre (60, 70), size 40 x 80
    expected = torch.tensor([[5.0, 5.0, math.log(2) / 0.2, math.log(2) / 0.2]])
    torch.testing.assert_close(encode(twice, anchor), expected)
    torch.testing.assert_close(decode(encode(twice, anchor), anchor), twice)


def test_match_threshold_and_forced_best_anchor() -> None:
    anchors = torch.tensor(
        [
            [5.0, 5.0, 10.0, 10.0],  # = box 0 exactly
            [6.0, 5.0, 10.0, 10.0],  # IoU 9/11 = 0.82 with box 0
            [50.0, 50.0, 10.0, 10.0],  # far from everything
            [101.0, 101.0, 4.0, 4.0],  # inside box 1 but small: IoU 16/100
        ]
    )
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [96.0, 96.0, 106.0, 106.0]])
    labels, boxes = match(gt, torch.tensor([2, 3]), anchors, iou_thresh=0.5)
    # anchors 0 and 1 pass the threshold; anchor 3 (IoU 0.16) is box 1's best, so forced
    assert labels.tolist() == [2, 2, 0, 3]
    assert boxes[3].tolist() == gt[1].tolist()
    empty_labels, _ = match(torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), anchors)
    assert empty_labels.tolist() == [0, 0, 0, 0]


def test_hard_negative_mining_keeps_three_negatives_per_positive() -> None:
    loss = torch.tensor([[0.1, 5.0, 0.3, 0.9, 0.2, 0.8, 0.7, 0.05]])
    positive = torch.tensor([[False, True, False, False, False, False, False, False]])
    keep = hard_negative_mining(loss, positive, neg_pos_ratio=3)
    # the positive, and the three hardest negatives: 0.9, 0.8, 0.7
    assert torch.nonzero(keep[0]).flatten().tolist() == [1, 3, 5, 6]
    none = hard_negative_mining(loss, torch.zeros_like(positive))
    assert not none.any()  # no positives: no negatives either (SSD)


def test_multibox_loss_is_small_for_the_right_answer() -> None:
    anchors = torch.tensor([[5.0, 5.0, 10.0, 10.0], [50.0, 50.0, 10.0, 10.0]])
    targets = [{"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0]]), "labels": torch.tensor([1])}]
    right = torch.tensor([[[-9.0, 9.0], [9.0, -9.0]]])  # anchor 0: class 1; anchor 1: background
    wrong = right.flip(-1)
    reg = torch.zeros(1, 2, 4)  # anchor 0 already equals the box
    loss, parts = multibox_loss(right, reg, targets, anchors)
    assert parts["box"] == 0 and parts["cls"] < 1e-6
    worse, _ = multibox_loss(wrong, reg, targets, anchors)
    assert worse > 10  # two confident mistakes, each ~18 nats, over one positive
    giou, giou_parts = multibox_loss(right, reg, targets, anchors, box_loss="giou")
    assert giou_parts["box"] < 1e-6 and giou < 1e-5


def test_fcos_targets_pick_the_smallest_box_in_range() -> None:
    points = torch.tensor([[20.0, 20.0], [80.0, 80.0], [20.0, 21.0]])
    strides = torch.tensor([8.0, 8.0, 32.0])
    ranges = torch.tensor([[0.0, 64.0], [0.0, 64.0], [64.0, math.inf]])
    gt = torch.tensor([[0.0, 0.0, 40.0, 40.0], [10.0, 10.0, 30.0, 30.0]])
    labels, boxes = fcos_targets(points, strides, ranges, gt, torch.tensor([1, 2]))
    # point 0 lies in both: the smaller box 1 wins; point 1 in none; point 2's level wants
    # max(l, t, r, b) >= 64, which neither box reaches
    assert labels.tolist() == [2, 0, 0]
    assert boxes[0].tolist() == gt[1].tolist()


def test_fcos_loss_is_finite_and_lower_for_the_right_boxes() -> None:
    points = torch.tensor([[20.0, 20.0], [60.0, 60.0]])
    strides, ranges = torch.tensor([8.0, 8.0]), torch.tensor([[0.0, 1e9], [0.0, 1e9]])
    targets = [{"boxes": torch.tensor([[10.0, 10.0, 30.0, 30.0]]), "labels": torch.tensor([1])}]
    cls = torch.tensor([[[4.0], [-4.0]]])
    ctr = torch.tensor([[4.0, 0.0]])
    right = torch.tensor([[[10.0, 10.0, 10.0, 10.0], [1.0, 1.0, 1.0, 1.0]]])
    wrong = torch.tensor([[[2.0, 2.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0]]])
    good, parts = fcos_loss(cls, right, ctr, targets, points, strides, ranges)
    bad, _ = fcos_loss(cls, wrong, ctr, targets, points, strides, ranges)
    assert torch.isfinite(good) and parts["box"] < 1e-6 and bad > good


def test_postprocess_nms_per_class_and_thresholds() -> None:
    boxes = torch.tensor(
        [[[0.0, 0.0, 10.0, 10.0], [1.0, 0.0, 11.0, 10.0], [50.0, 50.0, 60.0, 60.0]]]
    )
    # columns: class 1, class 2
    scores = torch.tensor([[[0.9, 0.0], [0.8, 0.7], [0.01, 0.6]]])
    (out,) = postprocess(boxes, scores, score_thresh=0.05, iou_thresh=0.5)
    # box 1 of class 1 overlaps box 0 (IoU 0.82) and is dropped; as class 2 it stays
    assert out["labels"].tolist() == [1, 2, 2]
    assert out["scores"].tolist() == pytest.approx([0.9, 0.7, 0.6])
    (top,) = postprocess(boxes, scores, max_detections=1)
    assert top["labels"].tolist() == [1]
    (none,) = postprocess(boxes, scores, score_thresh=0.95)
    assert none["boxes"].shape == (0, 4)
