"""Detection data: VOC/COCO readers, the dataset contract, box-aware transforms, BCCD."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from torchdojo.data.detection import (
    DetectionDataset,
    DetectionItem,
    detection_collate,
    detection_transforms,
    load_bccd,
    load_coco,
    load_voc,
    read_coco_json,
    read_voc_xml,
    voc_split,
)
from torchdojo.data.errors import DataError

VOC_XML = """<annotation>
  <filename>{name}.jpg</filename>
  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>
  {objects}
</annotation>"""
OBJECT = (
    "<object><name>{label}</name><difficult>{difficult}</difficult>"
    "<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox>"
    "</object>"
)


def write_voc(root: Path, name: str, boxes: list[tuple], size: tuple[int, int] = (48, 64)) -> Path:
    """One image (H, W) = size and its XML with (label, x0, y0, x1, y1[, difficult]) boxes."""
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    h, w = size
    Image.new("RGB", (w, h), (10, 20, 30)).save(root / "JPEGImages" / f"{name}.jpg")
    objects = "".join(
        OBJECT.format(
            label=b[0], x0=b[1], y0=b[2], x1=b[3], y1=b[4], difficult=b[5] if len(b) > 5 else 0
        )
        for b in boxes
    )
    xml = root / "Annotations" / f"{name}.xml"
    xml.write_text(VOC_XML.format(name=name, w=w, h=h, objects=objects))
    return xml


def test_read_voc_xml_reads_boxes_labels_and_flags(tmp_path: Path) -> None:
    xml = write_voc(tmp_path, "a", [("cat", 1, 2, 30, 40, 1), (" dog ", 5.5, 6, 7, 8)])
    ann = read_voc_xml(xml)
    assert (ann.filename, ann.width, ann.height) == ("a.jpg", 64, 48)
    assert ann.labels == ["cat", "dog"]
    assert ann.boxes.dtype == np.float32 and ann.boxes.shape == (2, 4)
    np.testing.assert_allclose(ann.boxes[1], [5.5, 6, 7, 8])
    assert ann.difficult.tolist() == [True, False]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("<annotation><object>", "malformed XML"),
        ("<annotation><object><bndbox><xmin>1</xmin></bndbox></object></annotation>", "<name>"),
        (
            "<annotation><object><name>a</name><bndbox><xmin>x</xmin><ymin>1</ymin>"
            "<xmax>2</xmax><ymax>3</ymax></bndbox></object></annotation>",
            "<xmin>",
        ),
        ("<annotation><object><name>a</name></object></annotation>", "<bndbox>"),
        ('<!DOCTYPE a [<!ENTITY x "y">]><annotation/>', "DOCTYPE"),
        ("<other/>", "not <annotation>"),
    ],
)
def test_read_voc_xml_names_file_and_tag(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.xml"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        read_voc_xml(path)
    assert str(path) in str(info.value) and needle in str(info.value)
    assert "\n" not in str(info.value)


def coco_dict() -> dict:
    return {
        "images": [
            {"id": 7, "file_name": "a.png", "width": 64, "height": 48},
            {"id": 8, "file_name": "b.png", "width": 64, "height": 48},
        ],
        "categories": [
            {"id": 3, "name": "person", "keypoints": ["nose", "eye"], "skeleton": [[1, 2]]},
            {"id": 1, "name": "ball"},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 3,
                "bbox": [10, 5, 20, 30],
                "keypoints": [12, 8, 2, 0, 0, 0],
            },
            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [50, 40, 30, 20]},
            {"id": 3, "image_id": 7, "category_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 1},
        ],
    }


def test_read_coco_json_converts_xywh_and_keypoints(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(coco_dict()))
    records = read_coco_json(path)
    assert records.classes == ["ball", "person"]  # sorted by category id
    first, second = records.images
    np.testing.assert_allclose(first.boxes[0], [10, 5, 30, 35])
    assert first.category_ids == [3, 1, 1] and first.iscrowd.tolist() == [False, False, True]
    assert first.keypoints is not None and first.keypoints.shape == (3, 2, 3)
    np.testing.assert_allclose(first.keypoints[0, 0], [12, 8, 2])
    assert first.keypoints[1].sum() == 0  # no keypoints: visibility 0
    assert second.boxes.shape == (0, 4) and second.keypoints is None


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda d: d["annotations"][0].update(image_id=99), "image_id 99"),
        (lambda d: d["annotations"][0].update(category_id=5), "category_id 5"),
        (lambda d: d.pop("categories"), "'categories'"),
        (lambda d: d["annotations"][1].pop("bbox"), "'bbox'"),
        (lambda d: d["annotations"][1].update(bbox=[1, "x", 2, 3]), "bbox"),
    ],
)
def test_read_coco_json_errors_name_the_problem(tmp_path: Path, edit, needle: str) -> None:
    data = coco_dict()
    edit(data)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=needle) as info:
        read_coco_json(path)
    assert str(path) in str(info.value)


def test_load_coco_maps_categories_drops_crowd_and_clips(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(coco_dict()))
    for name in ("a.png", "b.png"):
        Image.new("RGB", (64, 48)).save(tmp_path / name)
    data = load_coco(path, tmp_path)
    assert data.classes == ["ball", "person"] and len(data) == 2
    _, target = data[0]
    assert target["labels"].tolist() == [2, 1]
    np.testing.assert_allclose(target["boxes"][1].numpy(), [50, 40, 64, 48])  # clipped
    assert any("crowd" in n for n in data.notes) and any("clipped" in n for n in data.notes)
    _, empty = data[1]
    assert empty["boxes"].shape == (0, 4) and empty["labels"].dtype == torch.int64


def test_load_voc_clips_drops_and_splits_by_seed(tmp_path: Path) -> None:
    write_voc(tmp_path, "img0", [("cat", -3, 2, 30, 40), ("dog", 10, 10, 10, 20)])
    for i in range(1, 10):
        write_voc(tmp_path, f"img{i}", [("dog", 1, 1, 20, 20)])
    (tmp_path / "JPEGImages" / "img9.jpg").unlink()
    data = load_voc(tmp_path, "all")
    assert data.classes == ["cat", "dog"] and len(data) == 9
    notes = " ".join(data.notes)
    assert "img0.xml: box [-3.0" in notes and "clipped" in notes
    assert "empty, dropped" in notes and "img9" in notes and "skipped" in notes
    image, target = data[[i.image.stem for i in data.items].index("img0")]
    assert image.shape == (3, 48, 64) and image.dtype == torch.float32
    assert 0.0 <= float(image.min()) <= float(image.max()) <= 1.0
    np.testing.assert_allclose(target["boxes"].numpy(), [[0, 2, 30, 40]])
    assert target["labels"].tolist() == [1]
    stems = [f"img{i}" for i in range(10)]
    parts = {s: voc_split(stems, s) for s in ("train", "val", "test")}
    assert sorted(sum(parts.values(), [])) == sorted(stems)
    assert all(parts[s] for s in parts) and voc_split(stems, "train") == parts["train"]
    assert sorted(voc_split(stems, "trainval")) == sorted(parts["train"] + parts["val"])


def test_load_voc_unknown_class_and_missing_listing(tmp_path: Path) -> None:
    xml = write_voc(tmp_path, "a", [("zebra", 1, 1, 5, 5)])
    with pytest.raises(DataError, match="'zebra' is not in classes") as info:
        load_voc(tmp_path, "all", classes=["cat"])
    assert str(xml) in str(info.value)
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Main" / "train.txt").write_text("a\nghost\n")
    with pytest.raises(DataError, match="ghost.xml"):
        load_voc(tmp_path, "train")
    with pytest.raises(DataError, match="no Annotations"):
        load_voc(tmp_path / "JPEGImages", "all")


def test_corrupt_image_raises_data_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    item = DetectionItem(bad, np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    with pytest.raises(DataError, match="bad.jpg"):
        DetectionDataset([item], ["a"])[0]
    with pytest.raises(ValueError, match="1..1"):
        DetectionDataset(
            [DetectionItem(bad, np.ones((1, 4), np.float32), np.zeros(1, np.int64))], ["a"]
        )


def rectangle_sample(x0: int, y0: int, x1: int, y1: int) -> tuple:
    """A (96, 128) dark image with a white rectangle, its box, and a mask of the rectangle."""
    pixels = torch.zeros(3, 96, 128, dtype=torch.uint8)
    pixels[:, y0:y1, x0:x1] = 255
    mask = torch.zeros(96, 128, dtype=torch.uint8)
    mask[y0:y1, x0:x1] = 1
    boxes = tv_tensors.BoundingBoxes(
        torch.tensor([[x0, y0, x1, y1]], dtype=torch.float32), format="XYXY", canvas_size=(96, 128)
    )
    target = {"boxes": boxes, "labels": torch.tensor([1]), "masks": tv_tensors.Mask(mask)}
    return tv_tensors.Image(pixels), target


@pytest.mark.parametrize("seed", range(12))
def test_train_transforms_move_boxes_with_the_pixels(seed: int) -> None:
    torch.manual_seed(seed)
    image, target = rectangle_sample(70, 10, 120, 40)
    out_image, out = detection_transforms((64, 80), train=True)(image, target)
    assert tuple(out_image.shape) == (3, 64, 80)
    mask = out["masks"].bool()
    if len(out["boxes"]) == 0:  # the crop may cut the object away: then no pixel is left
        assert mask.sum() <= 2
        return
    ys, xs = torch.nonzero(mask, as_tuple=True)
    x0, y0, x1, y1 = out["boxes"][0].tolist()
    assert abs(xs.min() - x0) <= 1.5 and abs(xs.max() + 1 - x1) <= 1.5
    assert abs(ys.min() - y0) <= 1.5 and abs(ys.max() + 1 - y1) <= 1.5


def test_train_transforms_accept_an_image_without_boxes() -> None:
    empty = DetectionItem(
        np.zeros((60, 80, 3), np.uint8), np.zeros((0, 4), np.float32), np.zeros(0)
    )
    data = DetectionDataset([empty], ["a"], detection_transforms((32, 32), train=True))
    for seed in range(5):
        torch.manual_seed(seed)
        image, target = data[0]
        assert image.shape == (3, 32, 32) and target["boxes"].shape == (0, 4)
        assert target["labels"].dtype == torch.int64


def test_eval_transform_resizes_image_and_boxes_together(tmp_path: Path) -> None:
    pixels = np.zeros((96, 128, 3), np.uint8)
    pixels[10:40, 70:120] = 255  # rows 10-39, columns 70-119
    item = DetectionItem(pixels, np.array([[70, 10, 120, 40]], np.float32), np.array([1]))
    data = DetectionDataset([item], ["box"], detection_transforms((48, 32), train=False))
    image, target = data[0]
    assert image.shape == (3, 48, 32)
    bright = image.mean(0) > 0.5
    ys, xs = torch.nonzero(bright, as_tuple=True)
    np.testing.assert_allclose(target["boxes"][0].numpy(), [17.5, 5, 30, 20])
    assert xs.min() >= 17 and xs.max() < 30 and ys.min() >= 5 and ys.max() < 20


def test_detection_collate_stacks_images_and_lists_targets() -> None:
    sample = (torch.zeros(3, 8, 8), {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0)})
    images, targets = detection_collate([sample, sample, sample])
    assert images.shape == (3, 3, 8, 8) and len(targets) == 3
    with pytest.raises(ValueError, match="differ in size"):
        detection_collate([sample, (torch.zeros(3, 8, 9), sample[1])])


def test_bccd_official_split_and_dropped_boxes(real_data: Path) -> None:
    sizes = {split: len(load_bccd(real_data, split)) for split in ("train", "val", "test")}
    assert sizes == {"train": 205, "val": 87, "test": 72}
    trainval = load_bccd(real_data, "trainval")
    assert trainval.classes == ["RBC", "WBC", "Platelets"]
    assert len(trainval.notes) == 2
    assert {n.split(".")[0] for n in trainval.notes} == {"BloodImage_00338", "BloodImage_00343"}
    image, target = load_bccd(real_data, "test")[0]
    assert image.shape == (3, 480, 640)
    assert set(target["labels"].tolist()) <= {1, 2, 3} and len(target["labels"]) > 0
    boxes = target["boxes"]
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 2] <= 640).all()
