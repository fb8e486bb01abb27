"""The annotation doctor: checks detection and segmentation labels before training, per file.

It reads a Pascal VOC folder (``Annotations/*.xml`` + ``JPEGImages/``), a COCO JSON file with
its images folder, or an image folder paired with a mask folder, and lists every finding as
(file, problem, fix) without stopping at the first one: malformed files, boxes out of the
image or empty, unknown classes, images without labels, annotations without images, image
sizes that disagree with the annotation, masks whose size differs from their image or whose
values are not classes. ``severity`` is ``error`` for what stops the loaders
(:mod:`torchdojo.data.detection`) and ``warning`` for what they repair (clip, drop, skip).
``torchdojo doctor PATH`` prints it; taught in lessons/19_object_detection.py.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from torchdojo.data.detection import find_image, read_voc_xml, voc_stems
from torchdojo.data.errors import DataError
from torchdojo.data.image_folder import describe_error, is_image_file

IGNORE_INDEX = 255  # mask value that segmentation losses skip


@dataclass(frozen=True)
class Finding:
    """One row of the report: which file, what is wrong, how to fix it."""

    file: str
    problem: str  # malformed | unknown-class | box-out-of-bounds | empty-box | no-labels | ...
    fix: str
    severity: str = "warning"  # error: the loader stops; warning: it repairs or skips


@dataclass
class AnnotationReport:
    """What a check found.

    Attributes:
        path: The folder or file checked.
        format: ``voc``, ``coco`` or ``masks``.
        num_images: Images (or image/mask pairs) looked at.
        class_counts: Class -> boxes (detection) or images containing it (masks).
        findings: Every finding, in file order.
    """

    path: str
    format: str
    num_images: int = 0
    class_counts: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        """Findings that would stop training."""
        return [f for f in self.findings if f.severity == "error"]

    def count(self, problem: str) -> int:
        """How many findings of kind ``problem``."""
        return sum(f.problem == problem for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every field."""
        return asdict(self)


def annotation_format(path: str | Path) -> str | None:
    """``voc`` (a folder with ``Annotations/``), ``coco`` (a ``.json`` file), ``masks`` (a folder
    with ``images/`` and ``masks/``), else None."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".json":
        return "coco"
    if (path / "Annotations").is_dir():
        return "voc"
    if (path / "images").is_dir() and (path / "masks").is_dir():
        return "masks"
    return None


def _image_size(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    """((W, H), None) for a readable image, else (None, reason)."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.size, None
    except Exception as exc:  # Pillow plugins raise many types (OSError, SyntaxError, ...)
        return None, describe_error(exc, path)


def _check_boxes(
    name: str,
    boxes: np.ndarray,
    labels: Sequence[str],
    size: tuple[int, int],
    known: set[str] | None,
    out: list[Finding],
) -> None:
    """Findings for the (N, 4) xyxy ``boxes`` of one image of ``size`` (W, H)."""
    width, height = size
    for box, label in zip(boxes.tolist(), labels, strict=True):
        x0, y0, x1, y1 = box
        if known is not None and label not in known:
            fix = f"class {label!r} is not one of {sorted(known)}; rename it or add the class"
            out.append(Finding(name, "unknown-class", fix, "error"))
        if x1 <= x0 or y1 <= y0:
            out.append(Finding(name, "empty-box", f"box {box} has no area; delete it (dropped)"))
        elif x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            fix = f"box {box} leaves the {width}x{height} image; fix it (clipped)"
            out.append(Finding(name, "box-out-of-bounds", fix))


def check_voc(root: str | Path, classes: Sequence[str] | None = None) -> AnnotationReport:
    """Check a Pascal VOC folder, every annotation and image.

    Args:
        root: The folder (``Annotations/``, ``JPEGImages/``, optional ``ImageSets/Main/`` and
            ``SegmentationClass/``, whose masks are checked too).
        classes: The expected class names; unknown names are errors. Default: accept any.
    """
    root = Path(root).expanduser()
    report = AnnotationReport(str(root), "voc")
    out = report.findings
    ann_dir, img_dir = root / "Annotations", root / "JPEGImages"
    if not ann_dir.is_dir():
        out.append(Finding(str(root), "no-annotations", "add Annotations/*.xml (VOC)", "error"))
        return report
    known = set(classes) if classes is not None else None
    counts: Counter[str] = Counter()
    used_images: set[Path] = set()
    for xml in sorted(ann_dir.glob("*.xml")):
        name = f"Annotations/{xml.name}"
        try:
            ann = read_voc_xml(xml)
        except DataError as exc:
            out.append(Finding(name, "malformed", str(exc).split(": ", 1)[-1], "error"))
            continue
        image = find_image(img_dir, ann.filename, xml.stem)
        if image is None:
            fix = f"image {ann.filename} is missing from JPEGImages/; add it or delete the XML"
            out.append(Finding(name, "annotation-without-image", fix))
            continue
        used_images.add(image)
        report.num_images += 1
        size = _checked_size(image, f"JPEGImages/{image.name}", (ann.width, ann.height), out)
        if size is None:
            continue
        if not ann.labels:
            out.append(Finding(name, "no-labels", "no <object>: annotate it or delete the pair"))
        counts.update(ann.labels)
        _check_boxes(name, ann.boxes, ann.labels, size, known, out)
    _unlabelled_images(img_dir, used_images, "JPEGImages", out)
    _check_listings(root, out)
    report.class_counts = dict(sorted(counts.items()))
    if (root / "SegmentationClass").is_dir():
        masks = check_masks(img_dir, root / "SegmentationClass", classes=_with_background(classes))
        out += [m for m in masks.findings if m.problem != "image-without-mask"]
    return report


def _with_background(classes: Sequence[str] | None) -> list[str] | None:
    return None if classes is None else ["background", *classes]


def _checked_size(
    image: Path, name: str, declared: tuple[int, int], out: list[Finding]
) -> tuple[int, int] | None:
    """The image's real (W, H), with findings for an unreadable file or a wrong declared size."""
    size, reason = _image_size(image)
    if size is None:
        out.append(Finding(name, "unreadable-image", f"{reason}; repair or delete it", "error"))
        return None
    if declared[0] > 0 and declared[1] > 0 and tuple(declared) != size:
        fix = (
            f"annotation says {declared[0]}x{declared[1]} but the image is {size[0]}x{size[1]}; "
            "re-export the annotation for this image"
        )
        out.append(Finding(name, "size-mismatch", fix))
    return size


def _unlabelled_images(folder: Path, used: set[Path], prefix: str, out: list[Finding]) -> None:
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        if is_image_file(path) and path not in used:
            fix = "no annotation names this image; annotate it or move it out"
            out.append(Finding(f"{prefix}/{path.name}", "image-without-annotation", fix))


def _check_listings(root: Path, out: list[Finding]) -> None:
    main = root / "ImageSets" / "Main"
    for split in ("train", "val", "test", "trainval"):
        if not (main / f"{split}.txt").is_file():
            continue
        for stem in voc_stems(root, split):
            if not (root / "Annotations" / f"{stem}.xml").is_file():
                fix = f"listed in ImageSets/Main/{split}.txt but missing; add it or unlist it"
                out.append(Finding(f"Annotations/{stem}.xml", "listed-missing", fix, "error"))


def check_coco(
    json_path: str | Path, images_dir: str | Path, classes: Sequence[str] | None = None
) -> AnnotationReport:
    """Check a COCO detection/keypoints file and its images; lists every bad id, not the first.

    Args:
        json_path: The ``.json`` file.
        images_dir: The folder its ``file_name`` entries are relative to.
        classes: Expected category names; others are errors. Default: accept any.
    """
    json_path, images_dir = Path(json_path).expanduser(), Path(images_dir).expanduser()
    report = AnnotationReport(str(json_path), "coco")
    out = report.findings
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
        images = {int(i["id"]): dict(i) for i in data["images"]}
        categories = {int(c["id"]): str(c["name"]) for c in data["categories"]}
        annotations = list(data["annotations"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        fix = f"cannot read images/categories/annotations ({describe_json_error(exc)}); re-export"
        out.append(Finding(json_path.name, "malformed", fix, "error"))
        return report
    known = set(classes) if classes is not None else None
    per_image = _coco_boxes(json_path.name, annotations, images, categories, out)
    counts: Counter[str] = Counter()
    for image_id, info in images.items():
        name = str(info.get("file_name", f"image id {image_id}"))
        path = images_dir / name
        if not path.is_file():
            fix = f"not found in {images_dir}; add it or delete its entry"
            out.append(Finding(name, "annotation-without-image", fix))
            continue
        report.num_images += 1
        declared = (_as_int(info.get("width")), _as_int(info.get("height")))
        size = _checked_size(path, name, declared, out)
        boxes, labels = per_image.get(image_id, ([], []))
        if size is None:
            continue
        if not labels:
            out.append(Finding(name, "no-labels", "no annotation: annotate it or remove it"))
        counts.update(labels)
        _check_boxes(name, np.asarray(boxes).reshape(-1, 4), labels, size, known, out)
    listed = {images_dir / str(i.get("file_name", "")) for i in images.values()}
    _unlabelled_images(images_dir, listed, images_dir.name, out)
    report.class_counts = dict(sorted(counts.items()))
    return report


def _as_int(value: Any) -> int:
    """An id or size as int; -1 for anything that is not a whole number."""
    try:
        return int(value) if float(value) == int(value) else -1
    except (TypeError, ValueError, OverflowError):
        return -1


def describe_json_error(exc: BaseException) -> str:
    """A short reason for a failed COCO parse."""
    if isinstance(exc, KeyError):
        return f"missing key {exc}"
    return f"{type(exc).__name__}: {exc}"


def _coco_boxes(
    name: str,
    annotations: list[Any],
    images: dict[int, Any],
    categories: dict[int, str],
    out: list[Finding],
) -> dict[int, tuple[list[list[float]], list[str]]]:
    """Image id -> (xyxy boxes, class names), with a finding for each bad annotation."""
    per_image: dict[int, tuple[list[list[float]], list[str]]] = {}
    for i, ann in enumerate(annotations):
        where = f"{name} annotations[{i}]"
        try:
            image_id, category_id = _as_int(ann["image_id"]), _as_int(ann["category_id"])
            x, y, w, h = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError) as exc:
            fix = f"needs image_id, category_id and bbox [x, y, w, h] ({describe_json_error(exc)})"
            out.append(Finding(where, "malformed", fix, "error"))
            continue
        if image_id not in images:
            fix = f"image_id {image_id} is not in 'images'; add the image or delete this"
            out.append(Finding(where, "unknown-image-id", fix, "error"))
            continue
        if category_id not in categories:
            fix = f"category_id {category_id} is not in 'categories'; add it or fix the id"
            out.append(Finding(where, "unknown-category-id", fix, "error"))
            continue
        boxes, labels = per_image.setdefault(image_id, ([], []))
        boxes.append([x, y, x + w, y + h])  # COCO xywh -> xyxy
        labels.append(categories[category_id])
    return per_image


def check_masks(
    images_dir: str | Path,
    masks_dir: str | Path,
    *,
    classes: Sequence[str] | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> AnnotationReport:
    """Check an image folder against a mask folder paired by file stem.

    Masks hold a class index per pixel (mode ``L``/``P``/``I``), as
    :func:`torchdojo.data.segmentation.load_mask_folder` reads them; an RGB(A) mask is an
    error (its red channel is still checked, where BBBC039 keeps its classes). With
    ``classes`` (background included), values outside ``0..len(classes)-1`` and
    ``ignore_index`` are errors, as are images without a mask and masks without an image.

    Args:
        images_dir: The images.
        masks_dir: The masks, ``<stem>.png`` (any image extension) for each ``<stem>.*`` image.
        classes: Class names, background first; default: accept any value.
        ignore_index: The value marking pixels to ignore.
    """
    images_dir, masks_dir = Path(images_dir).expanduser(), Path(masks_dir).expanduser()
    report = AnnotationReport(f"{images_dir} + {masks_dir}", "masks")
    out = report.findings
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            out.append(Finding(str(folder), "missing-folder", "create it or fix the path", "error"))
    if out:
        return report
    images = {p.stem: p for p in sorted(images_dir.iterdir()) if is_image_file(p)}
    masks = {p.stem: p for p in sorted(masks_dir.iterdir()) if is_image_file(p)}
    counts: Counter[str] = Counter()
    for stem in sorted(set(masks) - set(images)):
        fix = f"no image {stem}.* in {images_dir.name}/; add it or delete the mask"
        out.append(
            Finding(f"{masks_dir.name}/{masks[stem].name}", "mask-without-image", fix, "error")
        )
    for stem, image in images.items():
        name = f"{images_dir.name}/{image.name}"
        if stem not in masks:
            fix = f"no mask {stem}.png in {masks_dir.name}/; draw it or move the image out"
            out.append(Finding(name, "image-without-mask", fix, "error"))
            continue
        report.num_images += 1
        values = _mask_values(masks[stem], f"{masks_dir.name}/{masks[stem].name}", image, out)
        if values is None:
            continue
        counts.update(
            str(v) if classes is None or v >= len(classes) else classes[v] for v in values
        )
        bad = [v for v in values if classes is not None and v >= len(classes) and v != ignore_index]
        if bad:
            fix = (
                f"values {bad} are not classes 0..{len(classes or []) - 1} (or {ignore_index} = "
                "ignore); save class indices, not colours"
            )
            out.append(
                Finding(f"{masks_dir.name}/{masks[stem].name}", "bad-mask-values", fix, "error")
            )
    report.class_counts = dict(sorted(counts.items()))
    return report


def _mask_values(mask: Path, name: str, image: Path, out: list[Finding]) -> list[int] | None:
    """The distinct values of a mask, with findings for unreadable files and size mismatches."""
    try:
        with Image.open(mask) as img:
            img.load()
            pixels = np.asarray(img)
    except Exception as exc:  # Pillow plugins raise many types
        why = describe_error(exc, mask)
        out.append(Finding(name, "unreadable-mask", f"{why}; repair or redraw it", "error"))
        return None
    if pixels.ndim == 3:  # colour masks: the red channel is checked (BBBC039 stores it so)
        fix = (
            "mask holds colours; the mask-folder loader reads class indices: save it as an "
            "8-bit grayscale or palette PNG whose pixel values are the class numbers"
        )
        out.append(Finding(name, "colour-mask", fix, "error"))
        pixels = pixels[..., 0]
    size, reason = _image_size(image)
    if size is None:
        fix = f"{reason}; repair or delete it"
        out.append(Finding(f"{image.parent.name}/{image.name}", "unreadable-image", fix, "error"))
        return None
    if (pixels.shape[1], pixels.shape[0]) != size:
        fix = (
            f"mask is {pixels.shape[1]}x{pixels.shape[0]} but its image is {size[0]}x{size[1]}; "
            "redraw or resize the mask (nearest neighbour)"
        )
        out.append(Finding(name, "size-mismatch", fix, "error"))
    return [int(v) for v in np.unique(pixels)]
