"""The annotation doctor finds every planted problem in VOC, COCO and mask folders, by file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from torchdojo.data.annotation_doctor import (
    annotation_format,
    check_coco,
    check_masks,
    check_voc,
)
from torchdojo.data.scenes import SCENE_CLASSES, write_scenes_coco, write_scenes_voc


def problems(report) -> set[tuple[str, str]]:
    return {(f.file, f.problem) for f in report.findings}


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    """A clean 6-image VOC folder with planted problems."""
    root = write_scenes_voc(tmp_path / "voc", 6, (40, 48), seed=2)
    assert check_voc(root, SCENE_CLASSES).findings == []  # clean before planting
    ann = root / "Annotations"
    text = (ann / "scene_00000.xml").read_text()
    first = text.index("<name>")
    text = text[:first] + "<name>zebra</name>" + text[text.index("</name>", first) + 7 :]
    (ann / "scene_00000.xml").write_text(text.replace("<xmax>", "<xmax>9", 1))  # out of bounds
    (ann / "scene_00001.xml").write_text("<annotation><object>")  # malformed
    (root / "JPEGImages" / "scene_00002.jpg").unlink()  # annotation without image
    Image.new("RGB", (48, 40)).save(root / "JPEGImages" / "stray.jpg")  # image, no annotation
    xml = (ann / "scene_00003.xml").read_text()
    start, end = xml.index("<object>"), xml.rindex("</object>") + len("</object>")
    (ann / "scene_00003.xml").write_text(xml[:start] + xml[end:])  # no objects
    xml = (ann / "scene_00004.xml").read_text()
    (ann / "scene_00004.xml").write_text(xml.replace("<width>48</width>", "<width>50</width>"))
    (root / "ImageSets" / "Main" / "train.txt").write_text("scene_00005\nghost\n")
    mask = np.zeros((40, 48), np.uint8)
    mask[0, 0] = 9
    Image.fromarray(mask).save(root / "SegmentationClass" / "scene_00005.png")
    return root


def test_check_voc_lists_each_file_and_problem(voc: Path) -> None:
    report = check_voc(voc, SCENE_CLASSES)
    found = problems(report)
    assert ("Annotations/scene_00000.xml", "unknown-class") in found
    assert ("Annotations/scene_00000.xml", "box-out-of-bounds") in found
    assert ("Annotations/scene_00001.xml", "malformed") in found
    assert ("Annotations/scene_00002.xml", "annotation-without-image") in found
    assert ("JPEGImages/stray.jpg", "image-without-annotation") in found
    assert ("Annotations/scene_00003.xml", "no-labels") in found
    assert ("JPEGImages/scene_00004.jpg", "size-mismatch") in found
    assert ("Annotations/ghost.xml", "listed-missing") in found
    assert ("SegmentationClass/scene_00005.png", "bad-mask-values") in found
    assert {f.problem for f in report.errors} == {
        "unknown-class",
        "malformed",
        "listed-missing",
        "bad-mask-values",
        "mask-without-image",  # SegmentationClass/scene_00002.png lost its image too
    }
    assert sum(report.class_counts.values()) > 0 and "zebra" in report.class_counts
    assert all(f.fix and "\n" not in f.fix for f in report.findings)
    assert annotation_format(voc) == "voc"


def test_check_coco_lists_every_bad_id(tmp_path: Path) -> None:
    path = write_scenes_coco(tmp_path / "c.json", tmp_path / "images", 4, (40, 48), seed=1)
    assert check_coco(path, tmp_path / "images").findings == []
    data = json.loads(path.read_text())
    data["annotations"][0]["image_id"] = 99
    data["annotations"][1]["category_id"] = 42
    data["annotations"][2]["bbox"] = [40, 30, 20, 20]  # leaves the 48x40 image
    data["annotations"][3]["bbox"] = [5, 5, 0, 4]  # empty
    data["annotations"][4].pop("bbox")
    data["images"].append({"id": 50, "file_name": "gone.png", "width": 48, "height": 40})
    data["categories"][0]["name"] = "blob"
    path.write_text(json.dumps(data))
    Image.new("RGB", (48, 40)).save(tmp_path / "images" / "extra.png")
    report = check_coco(path, tmp_path / "images", classes=SCENE_CLASSES)
    kinds = {f.problem for f in report.findings}
    assert {
        "unknown-image-id",
        "unknown-category-id",
        "box-out-of-bounds",
        "empty-box",
        "malformed",
        "annotation-without-image",
        "image-without-annotation",
    } <= kinds
    assert report.count("unknown-image-id") == 1 and report.count("malformed") == 1
    assert any(f.file == "c.json annotations[0]" for f in report.findings)
    assert any(f.problem == "unknown-class" and "blob" in f.fix for f in report.findings)
    path.write_text("{not json")
    (bad,) = check_coco(path, tmp_path / "images").findings
    assert bad.problem == "malformed" and bad.severity == "error"


def test_check_masks_sizes_values_and_pairs(tmp_path: Path) -> None:
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for stem in ("a", "b", "c", "d"):
        Image.new("RGB", (32, 24)).save(images / f"{stem}.png")
    Image.fromarray(np.full((24, 32), 2, np.uint8)).save(masks / "a.png")  # fine
    Image.fromarray(np.zeros((20, 32), np.uint8)).save(masks / "b.png")  # wrong size
    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[..., 0] = 7  # the red channel holds the class (BBBC039 style)
    Image.fromarray(rgba, "RGBA").save(masks / "c.png")
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(masks / "orphan.png")
    report = check_masks(images, masks, classes=["bg", "nucleus", "boundary"])
    assert problems(report) == {
        ("masks/b.png", "size-mismatch"),
        ("masks/c.png", "bad-mask-values"),
        ("masks/c.png", "colour-mask"),
        ("images/d.png", "image-without-mask"),
        ("masks/orphan.png", "mask-without-image"),
    }
    assert report.class_counts["boundary"] == 1 and report.num_images == 3
    assert "7" in next(f.fix for f in report.findings if f.problem == "bad-mask-values")
    assert annotation_format(tmp_path) == "masks"


def test_cli_doctor_reports_annotations(voc: Path, tmp_path: Path) -> None:
    from torchdojo.cli.app import _register_commands, app

    _register_commands()
    out = tmp_path / "report.json"
    args = ["doctor", str(voc), "--classes", ",".join(SCENE_CLASSES), "--output", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "scene_00001.xml" in result.output and "malformed" in result.output
    assert "annotation error(s)" in result.output
    assert json.loads(out.read_text())["format"] == "voc"
    coco = write_scenes_coco(tmp_path / "c.json", tmp_path / "images", 3, (40, 48), seed=1)
    result = CliRunner().invoke(app, ["doctor", str(coco)])  # images/ beside the file
    assert result.exit_code == 0, result.output
    assert "no problems found" in result.output and "3 images" in result.output
