"""Synthetic scenes: determinism, boxes that match the visible pixels, no colour shortcut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from torchdojo.data.detection import detection_collate, load_coco, load_voc
from torchdojo.data.scenes import (
    SCENE_CLASSES,
    make_scenes,
    scenes_detection,
    scenes_segmentation,
    write_scenes_coco,
    write_scenes_voc,
)


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(40, (64, 80), seed=3)


def test_scenes_are_seeded_and_prefix_stable(scenes) -> None:
    again = make_scenes(5, (64, 80), seed=3)
    assert np.array_equal(again.images, scenes.images[:5])
    assert all(np.array_equal(a, b) for a, b in zip(again.boxes, scenes.boxes[:5], strict=False))
    other = make_scenes(5, (64, 80), seed=4)
    assert not np.array_equal(other.images, again.images)


def test_shapes_dtypes_and_label_range(scenes) -> None:
    assert scenes.images.shape == (40, 64, 80, 3) and scenes.images.dtype == np.uint8
    assert scenes.masks.shape == (40, 64, 80) and scenes.masks.dtype == np.int64
    assert scenes.instances.dtype == np.int32
    counts = [len(b) for b in scenes.boxes]
    assert min(counts) >= 0 and max(counts) <= 6 and np.mean(counts) > 1.5
    labels = np.concatenate(scenes.labels)
    assert set(labels.tolist()) == set(range(1, len(SCENE_CLASSES) + 1))
    assert set(np.unique(scenes.masks).tolist()) == set(range(len(SCENE_CLASSES) + 1))


def test_boxes_are_the_visible_instance_extents(scenes) -> None:
    for boxes, labels, inst, sem in zip(
        scenes.boxes, scenes.labels, scenes.instances, scenes.masks, strict=True
    ):
        assert inst.max() == len(boxes)
        for j, (box, label) in enumerate(zip(boxes, labels, strict=True)):
            ys, xs = np.nonzero(inst == j + 1)
            assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            assert (sem[inst == j + 1] == label).all()


def test_colour_does_not_give_away_the_class(scenes) -> None:
    """Per-pixel colour classifiers (majority class per quantized colour, fit on other scenes)
    fail: only shape tells the classes apart."""
    test = make_scenes(8, (64, 80), seed=11)

    def bins(images: np.ndarray) -> np.ndarray:  # 8 levels per channel -> 512 colour bins
        q = images.reshape(-1, 3).astype(np.int64) // 32
        return q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2]

    train_bins, truth_train = bins(scenes.images), scenes.masks.ravel()
    test_bins, truth = bins(test.images), test.masks.ravel()
    votes = np.zeros((512, 6), np.int64)
    np.add.at(votes, (train_bins, truth_train), 1)
    pred = votes.argmax(1)[test_bins]
    ious = [
        ((pred == k) & (truth == k)).sum() / ((pred == k) | (truth == k)).sum() for k in range(6)
    ]
    assert ious[0] > 0.5 and np.mean(ious) < 0.35  # semantic mIoU far below 1
    votes[:, 0] = -1  # even told which pixels are objects, colour cannot name the shape
    fg = truth > 0
    accuracy = (votes.argmax(1)[test_bins][fg] == truth[fg]).mean()
    majority = np.bincount(truth[fg]).max() / fg.sum()
    assert accuracy < 0.3 and accuracy < majority


def test_detection_and_segmentation_datasets_follow_the_contract() -> None:
    det = scenes_detection(4, (48, 64), seed=1)
    images, targets = detection_collate([det[i] for i in range(4)])
    assert images.shape == (4, 3, 48, 64) and images.dtype == torch.float32
    assert float(images.max()) <= 1.0
    assert targets[0]["boxes"].dtype == torch.float32 and targets[0]["labels"].dtype == torch.int64
    assert det.classes == list(SCENE_CLASSES)
    seg = scenes_segmentation(2, (48, 64), seed=1)
    image, mask = seg[1]
    assert image.shape == (3, 48, 64) and mask.shape == (48, 64) and mask.dtype == torch.int64
    assert seg.classes[0] == "background" and int(mask.max()) <= 5
    assert torch.equal(mask, torch.from_numpy(seg.scenes.masks[1]))


def test_written_voc_and_coco_read_back(tmp_path: Path) -> None:
    scenes = make_scenes(6, (48, 64), seed=5)
    root = write_scenes_voc(tmp_path / "voc", 6, (48, 64), seed=5)
    data = load_voc(root, "all", classes=SCENE_CLASSES)
    assert len(data) == 6 and data.notes == []
    for i, item in enumerate(data.items):
        np.testing.assert_array_equal(item.boxes, scenes.boxes[i])
        np.testing.assert_array_equal(item.labels, scenes.labels[i])
    mask = np.asarray(Image.open(root / "SegmentationClass" / "scene_00002.png"))
    np.testing.assert_array_equal(mask, scenes.masks[2])
    split_sizes = [len(load_voc(root, s)) for s in ("train", "val", "test")]
    assert sum(split_sizes) == 6 and min(split_sizes) >= 1
    json_path = write_scenes_coco(tmp_path / "coco.json", tmp_path / "images", 6, (48, 64), seed=5)
    coco = load_coco(json_path, tmp_path / "images")
    assert coco.classes == list(SCENE_CLASSES)
    image, target = coco[3]
    np.testing.assert_array_equal(target["boxes"].numpy(), scenes.boxes[3])
    np.testing.assert_array_equal(image.permute(1, 2, 0).mul(255).round().byte(), scenes.images[3])
