"""Synthetic pose scenes, COCO keypoint files, and the heatmap / PAF targets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from torchdojo.data.errors import DataError
from torchdojo.data.poses import (
    PoseCollate,
    SyntheticPoses,
    heatmaps,
    load_coco_keypoints,
    pafs,
    write_pose_coco,
)
from torchdojo.nn.pose import COCO_KEYPOINTS, COCO_SKELETON


def test_scenes_are_seeded_and_well_formed() -> None:
    a, b, c = (SyntheticPoses(12, size=64, seed=s) for s in (3, 3, 4))
    people = []
    for i in range(12):
        image, target = a[i]
        assert torch.equal(image, b[i][0]) and torch.equal(
            target["keypoints"], b[i][1]["keypoints"]
        )
        assert image.shape == (3, 64, 64) and image.dtype == torch.float32
        assert 0 <= image.min() and image.max() <= 1
        kps, boxes = target["keypoints"], target["boxes"]
        assert kps.shape[1:] == (17, 3) and boxes.shape == (len(kps), 4)
        assert 1 <= len(kps) <= 4
        v = kps[..., 2]
        assert set(v.unique().tolist()) <= {0.0, 1.0, 2.0}
        assert (kps[v == 0][:, :2] == 0).all()  # COCO: unlabelled keypoints are 0, 0, 0
        inside = kps[v > 0][:, :2]
        assert ((inside >= 0) & (inside < 64)).all()
        assert (boxes[:, 2:] > boxes[:, :2]).all()
        people.append(len(kps))
    assert len(set(people)) > 1  # the number of people varies
    assert not all(torch.equal(a[i][0], c[i][0]) for i in range(3))


def test_overlapping_figures_flag_hidden_keypoints() -> None:
    data = SyntheticPoses(60, size=64, seed=0)
    flags = torch.cat([data[i][1]["keypoints"][..., 2].flatten() for i in range(60)])
    assert (flags == 1).any() and (flags == 0).any() and (flags == 2).float().mean() > 0.8


def test_heatmap_peaks_sit_on_the_keypoints() -> None:
    kps = torch.zeros(2, 17, 3)
    kps[0, 0] = torch.tensor([10.0, 22.0, 2])  # cell (2.0, 5.0) at stride 4
    kps[1, 0] = torch.tensor([50.0, 42.0, 2])
    kps[0, 5] = torch.tensor([30.0, 6.0, 1])
    maps = heatmaps(kps, (16, 16), 1.0, stride=4)
    assert maps.shape == (18, 16, 16)
    assert maps[0, 5, 2] == pytest.approx(1.0) and maps[0, 10, 12] == pytest.approx(1.0)
    assert int(maps[5].argmax()) == 1 * 16 + 7  # (30 / 4 - 0.5, 6 / 4 - 0.5) = (7, 1)
    assert maps[1].max() == 0  # a keypoint nobody has labelled
    assert torch.allclose(maps[-1], 1 - maps[:-1].amax(0))  # background channel


def test_pafs_point_along_the_limb_near_it_and_are_zero_elsewhere() -> None:
    kps = torch.zeros(1, 17, 3)
    kps[0, 5] = torch.tensor([10.0, 10.0, 2])  # left shoulder -> left elbow: along +x
    kps[0, 7] = torch.tensor([42.0, 10.0, 2])
    fields = pafs(kps, COCO_SKELETON, (16, 16), 1.0, stride=4)
    limb = COCO_SKELETON.index((5, 7))
    fx, fy = fields[2 * limb], fields[2 * limb + 1]
    assert fields.shape == (38, 16, 16)
    assert fx[2, 5] == pytest.approx(1.0) and fy[2, 5] == pytest.approx(0.0)  # on the segment
    assert fx[8, 5] == 0 and fx[2, 14] == 0  # far across, beyond the end
    others = torch.cat([fields[: 2 * limb], fields[2 * limb + 2 :]])
    assert others.abs().max() == 0  # limbs without both ends labelled stay empty


def test_collate_makes_targets_at_a_quarter_of_the_image() -> None:
    data = SyntheticPoses(3, size=64, seed=1)
    images, heat, fields, targets = PoseCollate()([data[i] for i in range(3)])
    assert images.shape == (3, 3, 64, 64)
    assert heat.shape == (3, 18, 16, 16) and fields.shape == (3, 38, 16, 16)
    assert len(targets) == 3 and targets[0]["keypoints"].shape[1] == 17


def test_coco_file_round_trip(tmp_path: Path) -> None:
    json_path = write_pose_coco(tmp_path / "ann.json", tmp_path / "images", 4, 64, seed=2)
    data = json.loads(json_path.read_text())
    assert data["categories"][0]["keypoints"] == list(COCO_KEYPOINTS)
    assert data["categories"][0]["skeleton"][0] == [16, 14]  # 1-based as COCO writes it
    assert all(len(a["keypoints"]) == 51 for a in data["annotations"])
    loaded = load_coco_keypoints(json_path, tmp_path / "images", size=64)
    synthetic = SyntheticPoses(4, size=64, seed=2)
    assert len(loaded) == 4 and loaded.skeleton == COCO_SKELETON
    for i in range(4):
        image, target = loaded[i]
        assert torch.equal(image, synthetic[i][0])  # PNG is lossless
        want = synthetic[i][1]
        assert torch.allclose(target["keypoints"], want["keypoints"], atol=0.01)
        assert torch.allclose(target["boxes"], want["boxes"])


def test_coco_loader_resizes_keypoints_with_the_image(tmp_path: Path) -> None:
    json_path = write_pose_coco(tmp_path / "ann.json", tmp_path, 1, 64, seed=5)
    half = load_coco_keypoints(json_path, tmp_path, size=32)
    full = load_coco_keypoints(json_path, tmp_path, size=64)
    k_half, k_full = half[0][1]["keypoints"], full[0][1]["keypoints"]
    assert half[0][0].shape == (3, 32, 32)
    assert torch.allclose(k_half[..., :2] * 2, k_full[..., :2], atol=0.01)


def _broken(tmp_path: Path, change: str) -> Path:
    json_path = write_pose_coco(tmp_path / "ann.json", tmp_path, 1, 32, seed=0)
    data = json.loads(json_path.read_text())
    if change == "no annotations":
        del data["annotations"]
    elif change == "short keypoints":
        data["annotations"][0]["keypoints"] = data["annotations"][0]["keypoints"][:50]
    elif change == "unknown image":
        data["annotations"][0]["image_id"] = 99
    elif change == "missing file":
        data["images"][0]["file_name"] = "nowhere.png"
    json_path.write_text(json.dumps(data))
    return json_path


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("no annotations", "'annotations'"),
        ("short keypoints", "50 keypoint numbers, expected 51"),
        ("unknown image", "image_id 99"),
        ("missing file", "nowhere.png"),
    ],
)
def test_bad_coco_files_raise_one_line_naming_the_file(
    tmp_path: Path, change: str, words: str
) -> None:
    json_path = _broken(tmp_path, change)
    with pytest.raises(DataError) as info:
        load_coco_keypoints(json_path, tmp_path)
    message = str(info.value)
    assert str(json_path) in message and words in message and "\n" not in message


def test_keypoints_lie_on_the_drawn_figure() -> None:
    """A visible keypoint is on (or next to) pixels that differ from the plain background."""
    data = SyntheticPoses(4, size=64, seed=7, max_people=1)
    for i in range(4):
        image, kps, boxes = data.scene(i)
        x0, y0, x1, y1 = boxes[0]
        visible = kps[0][kps[0, :, 2] == 2]
        assert ((visible[:, 0] >= x0 - 1.5) & (visible[:, 0] <= x1 + 1.5)).all()
        assert ((visible[:, 1] >= y0 - 1.5) & (visible[:, 1] <= y1 + 1.5)).all()
        assert np.asarray(image).shape == (64, 64, 3)
