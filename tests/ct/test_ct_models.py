"""Lung-CT models and metrics: the 3-D classifier, the slice U-Net, the recall-weighted Dice,
honest metrics, FROC matching and scoring, connected-component grouping, the threshold floor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torchdojo.models import create_model
from torchdojo.models.ct import slice_unet
from torchdojo.runs.ct import (
    Detection,
    RecallDiceLoss,
    equivalent_diameter,
    froc,
    froc_curve,
    froc_score,
    group_components,
    match_detections,
    operating_point,
    peak_centres,
    scores_at,
    slice_stack,
    threshold_detections,
)


def test_luna_cnn_reads_any_chip_size_and_learns() -> None:
    torch.manual_seed(0)
    model = create_model("luna-cnn", width=4)
    for shape in ((2, 1, 32, 48, 48), (3, 1, 16, 32, 32)):
        assert model(torch.randn(shape)).shape == (shape[0], 2)
    # Bright centres vs dark ones: a few Adam steps separate them.
    x = torch.randn(16, 1, 16, 16, 16)
    y = torch.arange(16) % 2
    x[y == 1, :, 6:10, 6:10, 6:10] += 3
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_slice_unet_takes_context_slices_and_gives_one_logit_map() -> None:
    model = slice_unet(context=2, width=4, depth=2)
    out = model(torch.randn(2, 5, 40, 36))
    assert out.shape == (2, 1, 40, 36)


def test_slice_stack_repeats_edge_slices() -> None:
    volume = torch.arange(5.0)[:, None, None].expand(5, 2, 2)
    assert slice_stack(volume, 0, 2)[:, 0, 0].tolist() == [0, 0, 0, 1, 2]
    assert slice_stack(volume, 4, 1)[:, 0, 0].tolist() == [3, 4, 4]


def test_recall_dice_punishes_misses_more_than_false_alarms() -> None:
    loss = RecallDiceLoss(fn_weight=8)
    target = torch.zeros(1, 1, 8, 8)
    target[..., 2:6, 2:6] = 1  # 16 nodule pixels
    big = 10.0
    perfect = loss((target * 2 - 1) * big, target)
    miss_half = target.clone()
    miss_half[..., 2:4, :] = 0  # 8 nodule pixels missed
    extra = target.clone()
    extra[..., 0:2, :] = 1  # 16 false pixels
    assert float(perfect) < 0.05
    assert float(loss((miss_half * 2 - 1) * big, target)) > 3 * float(
        loss((extra * 2 - 1) * big, target)
    )


def test_scores_and_operating_point() -> None:
    labels = torch.tensor([0, 0, 0, 0, 1, 0, 1, 1])
    probs = torch.tensor([0.1, 0.2, 0.3, 0.6, 0.4, 0.45, 0.7, 0.9])
    s = scores_at(probs, labels)
    assert s["recall"] == pytest.approx(2 / 3) and s["precision"] == pytest.approx(2 / 3)
    assert s["acc"] == pytest.approx(6 / 8)
    assert s["auc"] == pytest.approx(13 / 15)  # 0.4 ranked below 0.6 and 0.45
    threshold, recall, precision = operating_point(probs, labels, min_precision=0.6)
    assert (threshold, recall) == (pytest.approx(0.4), 1.0) and precision == pytest.approx(0.6)
    assert operating_point(probs, labels, min_precision=1.0)[1] == pytest.approx(2 / 3)


def test_match_detections_follows_luna16() -> None:
    nodules = [((0.0, 0.0, 0.0), 10.0), ((50.0, 0.0, 0.0), 4.0)]
    dets = [
        Detection((1.0, 1.0, 1.0), 0.9),  # hits nodule 0
        Detection((-2.0, 0.0, 0.0), 0.95),  # hits nodule 0 again: the better score counts
        Detection((52.5, 0.0, 0.0), 0.8),  # 2.5 mm from a 4 mm nodule: outside its radius
        Detection((100.0, 0.0, 0.0), 0.3),
    ]
    tp, fp = match_detections(dets, nodules)
    assert tp == [0.95] and sorted(fp) == [0.3, 0.8]


def test_froc_counts_per_scan_and_interpolates() -> None:
    fps, sens = froc_curve([0.9, 0.5], [0.8, 0.4, 0.2, 0.1], num_targets=4, num_scans=2)
    # thresholds 0.1 0.2 0.4 0.5 0.8 0.9, then none
    assert fps.tolist() == [2.0, 1.5, 1.0, 0.5, 0.5, 0.0, 0.0]
    assert sens.tolist() == [0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.0]
    expected = np.mean(np.interp([0.125, 0.25, 0.5, 1, 2, 4, 8], fps[::-1], sens[::-1]))
    assert froc_score(fps, sens) == pytest.approx(expected)
    perfect = [([Detection((0, 0, 0), 1.0)], [((0.0, 0.0, 0.0), 6.0)])] * 3
    assert froc(perfect)[0] == pytest.approx(1.0)
    nothing = [([Detection((90, 0, 0), 1.0)], [((0.0, 0.0, 0.0), 6.0)])] * 3
    assert froc(nothing)[0] == 0.0


def test_group_components_finds_blob_centres() -> None:
    mask = np.zeros((10, 20, 20), bool)
    mask[2:5, 3:6, 3:6] = True  # 27 voxels, centre (3, 4, 4)
    mask[7, 15, 15] = True  # one stray voxel
    probs = mask * 0.8
    found = group_components(mask, probs, min_voxels=2)
    assert len(found) == 1
    assert found[0].center_irc == pytest.approx((3.0, 4.0, 4.0))
    assert found[0].voxels == 27 and found[0].mean == pytest.approx(0.8)
    assert equivalent_diameter(27, (1.0, 1.0, 1.0)) == pytest.approx((6 * 27 / np.pi) ** (1 / 3))


def test_threshold_detector_finds_a_ball_in_a_lung_and_rejects_a_tube() -> None:
    hu = np.full((24, 48, 48), 40.0, np.float32)  # body
    hu[:, :2] = hu[:, -2:] = hu[:, :, :2] = hu[:, :, -2:] = -1000  # air around it
    hu[2:22, 6:42, 6:42] = -850  # one lung
    z, y, x = np.mgrid[:24, :48, :48]
    hu[(z - 12) ** 2 + (y - 20) ** 2 + (x - 20) ** 2 <= 16] = 30  # a 9-voxel-wide nodule
    hu[4:20, 34:36, 34:36] = 30  # a thin vessel along z
    found = threshold_detections(hu, (1.0, 1.0, 1.0))
    best = max(found, key=lambda c: c.mean)
    assert best.center_irc == pytest.approx((12, 20, 20), abs=0.5)
    assert all(c.mean < best.mean for c in found if c is not best)


def test_peak_centres_find_a_ball_that_touches_a_wall() -> None:
    """Components merge the ball with the wall; the deepest point stays the ball's centre."""
    z, y, x = np.mgrid[:20, :40, :40]
    mask = (z - 10) ** 2 + (y - 20) ** 2 + (x - 20) ** 2 <= 25  # ball of radius 5 at (10, 20, 20)
    mask[:, :, 24:26] = True  # a 2-voxel wall through the ball's edge
    merged = group_components(mask)
    assert len(merged) == 1 and abs(merged[0].center_irc[2] - 20) > 1  # pulled to the wall
    peaks = peak_centres(mask, (1.0, 1.0, 1.0), min_radius_mm=2.0)
    assert len(peaks) == 1 and peaks[0].center_irc == pytest.approx((10, 20, 20), abs=0.5)
    assert peaks[0].mean == pytest.approx(5.0, abs=1.0)  # the inscribed radius
