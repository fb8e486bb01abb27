"""OpenPose-small: stage outputs, the loss, and decoding (peaks, PAF line integral, grouping)."""

from __future__ import annotations

import math

import pytest
import torch

from torchdojo.data.poses import SyntheticPoses, heatmaps, pafs
from torchdojo.models import create_model
from torchdojo.models.openpose import pose_loss
from torchdojo.nn.pose import (
    COCO_SKELETON,
    connect_limbs,
    decode_poses,
    find_peaks,
    group_people,
    score_limbs,
)
from torchdojo.runs.pose import evaluate_poses


def test_every_stage_gives_heatmaps_and_pafs_and_forward_is_the_last() -> None:
    torch.manual_seed(0)
    model = create_model("openpose-small", width=16, stages=3, depth=1).eval()
    x = torch.rand(2, 3, 32, 48)
    outputs = model.stages(x)
    assert len(outputs) == 3
    for heat, fields in outputs:
        assert heat.shape == (2, 18, 8, 12) and fields.shape == (2, 38, 8, 12)
    heat, fields = model(x)
    assert torch.equal(heat, outputs[-1][0]) and torch.equal(fields, outputs[-1][1])


def test_loss_sums_over_stages_and_falls_when_fitting_a_batch() -> None:
    torch.manual_seed(0)
    data = SyntheticPoses(4, size=32, seed=0)
    x = torch.stack([data[i][0] for i in range(4)])
    kps = [data[i][1]["keypoints"] for i in range(4)]
    heat = torch.stack([heatmaps(k, (8, 8), 1.0) for k in kps])
    fields = torch.stack([pafs(k, COCO_SKELETON, (8, 8), 1.0) for k in kps])
    model = create_model("openpose-small", width=16, stages=2, depth=1)
    with torch.no_grad():
        outputs = model.stages(x)
        one, rest = pose_loss(outputs[:1], heat, fields), pose_loss(outputs[1:], heat, fields)
        assert float(pose_loss(outputs, heat, fields)) == pytest.approx(float(one + rest), rel=1e-5)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(6):
        loss = pose_loss(model.stages(x), heat, fields)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_peaks_are_local_maxima_above_the_threshold_with_subpixel_position() -> None:
    maps = torch.zeros(2, 20, 20)
    maps[0, 5, 5], maps[0, 5, 6] = 1.0, 0.5  # refined towards the right neighbour
    maps[0, 15, 12] = 0.6
    maps[0, 15, 14] = 0.05  # below the threshold
    peaks = find_peaks(maps, threshold=0.1, window=3)
    assert len(peaks) == 2 and len(peaks[1]) == 0
    found = sorted(peaks[0].tolist(), key=lambda p: -p[2])
    assert found[0][0] == pytest.approx(5.5 + 0.5 / 1.5) and found[0][1] == pytest.approx(5.5)
    assert found[1][:2] == pytest.approx([12.5, 15.5]) and len(found) == 2


def _limb_field(
    start: tuple[float, float], end: tuple[float, float], size: int = 40
) -> torch.Tensor:
    kps = torch.zeros(1, 17, 3)
    kps[0, 5] = torch.tensor([*start, 2.0])
    kps[0, 7] = torch.tensor([*end, 2.0])
    fields = pafs(kps, COCO_SKELETON, (size, size), 1.0, stride=1)
    limb = COCO_SKELETON.index((5, 7))
    return fields[2 * limb : 2 * limb + 2]


def test_line_integral_scores_the_true_limb_about_one_and_a_crossing_pairing_low() -> None:
    field = _limb_field((5.5, 10.5), (25.5, 10.5))  # a horizontal limb
    starts = torch.tensor([[5.5, 10.5]])
    ends = torch.tensor([[25.5, 10.5], [5.5, 30.5]])  # the true end, and one straight down
    scores = score_limbs(field, starts, ends, min_support=0.0)
    assert scores[0, 0] == pytest.approx(1.0, abs=0.02)
    assert abs(float(scores[0, 1])) < 0.15
    assert score_limbs(field, starts, ends)[0, 1] == -math.inf  # too few supporting samples


def test_greedy_matching_takes_the_best_pairs_once() -> None:
    scores = torch.tensor([[0.9, 0.8], [0.85, 0.1], [-1.0, 0.3]])
    assert connect_limbs(scores) == [(0, 0, pytest.approx(0.9)), (2, 1, pytest.approx(0.3))]


def test_grouping_two_people_from_their_limbs() -> None:
    skeleton = [(0, 1), (1, 2)]  # a three-keypoint chain
    peaks = [torch.tensor([[0.0, 0, 1], [50, 0, 1]]) for _ in range(3)]
    connections = [[(0, 0, 1.0), (1, 1, 0.9)], [(1, 1, 0.8), (0, 0, 0.7)]]
    keypoints, scores = group_people(peaks, connections, skeleton, min_parts=3)
    assert keypoints.shape == (2, 3, 3) and scores.shape == (2,)
    xs = sorted(keypoints[:, :, 0].tolist())
    assert xs == [[0.0, 0.0, 0.0], [50.0, 50.0, 50.0]]  # nobody mixes the two


def test_decoding_the_targets_recovers_the_people() -> None:
    data = SyntheticPoses(6, size=64, seed=3)
    predictions, truths = [], []
    for i in range(6):
        kps, boxes = data[i][1]["keypoints"], data[i][1]["boxes"]
        heat = heatmaps(kps, (16, 16), 1.0)
        fields = pafs(kps, COCO_SKELETON, (16, 16), 1.0)
        predictions.append(decode_poses(heat, fields, COCO_SKELETON, image_size=(64, 64)))
        truths.append((kps, boxes))
    scores = evaluate_poses(predictions, truths, image_size=(64, 64))
    assert scores.pck > 0.9 and scores.oks_ap50 > 0.8
    assert scores.predicted_people >= 0.8 * scores.people


def test_positive_weight_counts_keypoint_and_limb_cells_more_and_keeps_the_target_best() -> None:
    data = SyntheticPoses(2, size=32, seed=2)
    kps = [data[i][1]["keypoints"] for i in range(2)]
    heat = torch.stack([heatmaps(k, (8, 8), 1.0) for k in kps])
    fields = torch.stack([pafs(k, COCO_SKELETON, (8, 8), 1.0) for k in kps])
    empty = [(torch.zeros_like(heat), torch.zeros_like(fields))]  # predicts nothing at all
    plain = pose_loss(empty, heat, fields)
    weighted = pose_loss(empty, heat, fields, positive_weight=10.0)
    assert pose_loss(empty, heat, fields, positive_weight=0.0) == plain
    assert weighted > 3 * plain  # missing the keypoints and limbs costs more
    assert pose_loss([(heat, fields)], heat, fields, positive_weight=10.0) == 0
