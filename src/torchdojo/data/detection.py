"""Object detection data: Pascal VOC and COCO readers, a box-aware Dataset and its transforms.

A detection sample is ``(image, target)``: ``image`` float32 ``(3, H, W)`` in [0, 1]
(un-normalized; detectors normalize inside), ``target`` ``{"boxes": float32 (N, 4) xyxy in
pixels of that image, "labels": int64 (N,) in 1..C}``; 0 is background and never a label.
``classes`` lists the C names without background. Boxes are continuous pixel coordinates:
a VOC box ``xmin=1 .. xmax=640`` on a 640-wide image is kept as is and clipped to
``[0, W] x [0, H]`` (VOC's 1-based convention would shift it by one pixel, below annotation
noise). Augmentation is torchvision ``transforms.v2`` on ``tv_tensors``, so boxes follow the
pixels through flips, crops and resizes.

Taught in lessons/19_object_detection.py; used by the object-detection recipe (BCCD, own VOC
folders and COCO files) and checked by ``torchdojo doctor`` (``annotation_doctor``).
"""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from torchdojo.data.errors import DataError
from torchdojo.data.image_folder import IMAGE_EXTENSIONS, describe_error
from torchdojo.data.transforms import load_image_rgb

logger = logging.getLogger(__name__)

BCCD_CLASSES: tuple[str, ...] = ("RBC", "WBC", "Platelets")
VOC_SPLITS: tuple[str, ...] = ("train", "val", "test", "trainval", "all")
SPLIT_SEED = 0  # the seeded split of a VOC folder without ImageSets (see voc_split)
SPLIT_FRACTIONS: tuple[float, float] = (0.15, 0.15)  # val, test shares of that split

Target = dict[str, Tensor]
Sample = tuple[Tensor, Target]
DetectionTransform = Callable[[Any, Any], tuple[Any, Any]]


# --------------------------------------------------------------------------- file readers


@dataclass(frozen=True)
class VocAnnotation:
    """One Pascal VOC XML file.

    Attributes:
        filename: The image file name the annotation names (``<filename>``).
        width: Image width from ``<size>`` (0 when absent).
        height: Image height from ``<size>`` (0 when absent).
        boxes: float32 ``(N, 4)`` xyxy pixel boxes, as written (not clipped).
        labels: The N class names (``<name>``), stripped of white space.
        difficult: bool ``(N,)`` VOC's ``<difficult>`` flags.
    """

    filename: str
    width: int
    height: int
    boxes: np.ndarray
    labels: list[str]
    difficult: np.ndarray


def _parse_xml(path: Path) -> ET.Element:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the annotation ({exc}); check the file") from exc
    if b"<!DOCTYPE" in text or b"<!ENTITY" in text:
        raise DataError(
            f"{path}: XML with a DOCTYPE/ENTITY declaration is refused (entity expansion); "
            "remove the declaration, VOC files need none"
        )
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise DataError(f"{path}: malformed XML ({exc}); fix or re-export the file") from exc


def _text(node: ET.Element, tag: str, path: Path, *, required: bool = True) -> str | None:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if required:
            raise DataError(f"{path}: missing <{tag}> in <{node.tag}>; add it (VOC format)")
        return None
    return child.text.strip()


def _number(node: ET.Element, tag: str, path: Path) -> float:
    text = _text(node, tag, path)
    try:
        value = float(str(text))
    except ValueError:
        raise DataError(f"{path}: <{tag}> is {text!r}, not a number; write a pixel value") from None
    if not np.isfinite(value):
        raise DataError(f"{path}: <{tag}> is {text!r}; write a finite pixel value")
    return value


def read_voc_xml(path: str | Path) -> VocAnnotation:
    """Read one Pascal VOC annotation file.

    Args:
        path: The ``.xml`` file.

    Raises:
        DataError: Unreadable or malformed XML, a missing tag, or a non-numeric coordinate;
            the message names the file and the tag.
    """
    path = Path(path)
    root = _parse_xml(path)
    if root.tag != "annotation":
        raise DataError(f"{path}: root element is <{root.tag}>, not <annotation>; not a VOC file")
    filename = _text(root, "filename", path, required=False) or f"{path.stem}.jpg"
    width = height = 0
    size = root.find("size")
    if size is not None:
        width, height = int(_number(size, "width", path)), int(_number(size, "height", path))
    boxes, labels, difficult = [], [], []
    for obj in root.iter("object"):
        labels.append(str(_text(obj, "name", path)))
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise DataError(f"{path}: <object> {labels[-1]!r} has no <bndbox>; add its box")
        boxes.append([_number(bndbox, tag, path) for tag in ("xmin", "ymin", "xmax", "ymax")])
        flag = _text(obj, "difficult", path, required=False)
        difficult.append(flag is not None and flag not in {"0", "false", "False"})
    return VocAnnotation(
        filename=filename,
        width=width,
        height=height,
        boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        labels=labels,
        difficult=np.asarray(difficult, dtype=bool),
    )


@dataclass(frozen=True)
class CocoCategory:
    """One COCO category (``keypoints``/``skeleton`` only for person-like categories)."""

    id: int
    name: str
    keypoints: list[str] = field(default_factory=list)
    skeleton: list[list[int]] = field(default_factory=list)


@dataclass(frozen=True)
class CocoImage:
    """One COCO image with its annotations.

    Attributes:
        id: The image id.
        file_name: Path relative to the images folder.
        width: Image width.
        height: Image height.
        boxes: float32 ``(N, 4)`` xyxy (converted from COCO's xywh).
        category_ids: The N category ids.
        iscrowd: bool ``(N,)``.
        keypoints: float32 ``(N, K, 3)`` (x, y, visibility) or None when no annotation of the
            file has keypoints; annotations without them get zeros (visibility 0).
    """

    id: int
    file_name: str
    width: int
    height: int
    boxes: np.ndarray
    category_ids: list[int]
    iscrowd: np.ndarray
    keypoints: np.ndarray | None = None


@dataclass(frozen=True)
class CocoRecords:
    """A COCO instances/keypoints file: its categories and images in file order."""

    path: Path
    categories: list[CocoCategory]
    images: list[CocoImage]

    @property
    def classes(self) -> list[str]:
        """Category names sorted by id (label ``i + 1`` is ``classes[i]``)."""
        return [c.name for c in sorted(self.categories, key=lambda c: c.id)]


def _need(record: dict[str, Any], key: str, where: str, path: Path) -> Any:
    if not isinstance(record, dict) or key not in record:
        raise DataError(f"{path}: {where} has no {key!r} key; add it (COCO format)")
    return record[key]


def read_coco_json(path: str | Path) -> CocoRecords:
    """Read a COCO detection (``instances``) or ``person_keypoints`` JSON file.

    Args:
        path: The ``.json`` file.

    Raises:
        DataError: Malformed JSON, a missing key, a bbox that is not four numbers, or an
            annotation naming an unknown image id or category id.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read the COCO JSON ({exc}); fix or re-export it") from exc
    if not isinstance(data, dict):
        raise DataError(f"{path}: top level is not an object; expected COCO's dict")
    categories = _coco_categories(_need(data, "categories", "the file", path), path)
    images = _need(data, "images", "the file", path)
    anns = _need(data, "annotations", "the file", path)
    by_image: dict[int, list[dict[str, Any]]] = {}
    for i, image in enumerate(images):
        by_image[int(_need(image, "id", f"images[{i}]", path))] = []
    known = {c.id for c in categories}
    for i, ann in enumerate(anns):
        image_id = _need(ann, "image_id", f"annotations[{i}]", path)
        if image_id not in by_image:
            raise DataError(
                f"{path}: annotations[{i}] names image_id {image_id}, absent from 'images'; "
                "add the image or remove the annotation"
            )
        category_id = _need(ann, "category_id", f"annotations[{i}]", path)
        if category_id not in known:
            raise DataError(
                f"{path}: annotations[{i}] names category_id {category_id}, absent from "
                f"'categories' ({sorted(known)}); add the category or fix the id"
            )
        by_image[image_id].append(ann)
    records = [
        _coco_image(image, by_image[int(image["id"])], i, path) for i, image in enumerate(images)
    ]
    return CocoRecords(path, categories, records)


def _coco_categories(raw: list[dict[str, Any]], path: Path) -> list[CocoCategory]:
    out = []
    for i, cat in enumerate(raw):
        where = f"categories[{i}]"
        out.append(
            CocoCategory(
                id=int(_need(cat, "id", where, path)),
                name=str(_need(cat, "name", where, path)),
                keypoints=list(cat.get("keypoints", [])),
                skeleton=[list(pair) for pair in cat.get("skeleton", [])],
            )
        )
    return out


def _coco_image(
    image: dict[str, Any], anns: list[dict[str, Any]], index: int, path: Path
) -> CocoImage:
    where = f"images[{index}]"
    boxes = []
    for ann in anns:
        bbox = _need(ann, "bbox", f"annotation {ann.get('id', '?')}", path)
        try:
            x, y, w, h = (float(v) for v in bbox)
        except (TypeError, ValueError):
            raise DataError(
                f"{path}: annotation {ann.get('id', '?')} bbox {bbox!r} is not [x, y, w, h] "
                "numbers; fix it"
            ) from None
        boxes.append([x, y, x + w, y + h])  # COCO xywh -> xyxy
    return CocoImage(
        id=int(image["id"]),
        file_name=str(_need(image, "file_name", where, path)),
        width=int(image.get("width", 0)),
        height=int(image.get("height", 0)),
        boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        category_ids=[int(ann["category_id"]) for ann in anns],
        iscrowd=np.asarray([bool(ann.get("iscrowd", 0)) for ann in anns], dtype=bool),
        keypoints=_coco_keypoints(anns, path),
    )


def _coco_keypoints(anns: list[dict[str, Any]], path: Path) -> np.ndarray | None:
    lists = [ann.get("keypoints") for ann in anns]
    lengths = {len(k) for k in lists if k}
    if not lengths:
        return None
    if len(lengths) > 1 or next(iter(lengths)) % 3:
        raise DataError(
            f"{path}: keypoint lists of one image differ in length or are not x,y,v triples "
            f"(lengths {sorted(lengths)}); write K*3 numbers per annotation"
        )
    k = next(iter(lengths)) // 3
    out = np.zeros((len(anns), k, 3), dtype=np.float32)  # (N, K, 3) x, y, visibility
    for i, kps in enumerate(lists):
        if kps:
            out[i] = np.asarray(kps, dtype=np.float32).reshape(k, 3)
    return out


# --------------------------------------------------------------------------- dataset


@dataclass(frozen=True)
class DetectionItem:
    """One image and its boxes, before loading.

    Attributes:
        image: The image file, or an in-memory uint8 ``(H, W, 3)`` array.
        boxes: float32 ``(N, 4)`` xyxy pixel boxes.
        labels: int64 ``(N,)`` class ids in 1..C.
    """

    image: Path | np.ndarray
    boxes: np.ndarray
    labels: np.ndarray

    @property
    def name(self) -> str:
        """The file path, or ``<array>`` for an in-memory image."""
        return str(self.image) if isinstance(self.image, Path) else "<array>"


class DetectionDataset(Dataset[Sample]):
    """Images with boxes as ``(image float32 (3, H, W) in [0, 1], {"boxes", "labels"})``.

    Images are read lazily with Pillow (any mode becomes RGB); the transform sees a uint8
    ``tv_tensors.Image`` and a target whose ``boxes`` are ``tv_tensors.BoundingBoxes``, and
    the result is scaled to [0, 1] afterwards. Taught in lessons/19_object_detection.py.

    Args:
        items: The images and their boxes.
        classes: The C class names without background (label ``i + 1`` is ``classes[i]``).
        transform: A ``transforms.v2`` callable ``(image, target) -> (image, target)``, e.g.
            :func:`detection_transforms`.
        notes: What the loader changed (clipped or dropped boxes, skipped files).

    Raises:
        DataError: From ``__getitem__``, when an image file cannot be read (the message names
            it; a recipe may skip the item and report it).
    """

    def __init__(
        self,
        items: Sequence[DetectionItem],
        classes: Sequence[str],
        transform: DetectionTransform | None = None,
        *,
        notes: Sequence[str] = (),
    ) -> None:
        self.items = list(items)
        self.classes = list(classes)
        self.transform = transform
        self.notes = list(notes)
        for item in self.items:
            if len(item.labels) and (item.labels.min() < 1 or item.labels.max() > len(classes)):
                raise ValueError(
                    f"{item.name}: labels must be in 1..{len(classes)} (0 is background), "
                    f"got {sorted(set(item.labels.tolist()))}"
                )

    def __len__(self) -> int:
        return len(self.items)

    def with_transform(self, transform: DetectionTransform | None) -> DetectionDataset:
        """The same items with another transform (e.g. train vs eval)."""
        return DetectionDataset(self.items, self.classes, transform, notes=self.notes)

    def subset(self, indices: Sequence[int]) -> DetectionDataset:
        """The items at ``indices``, same classes and transform."""
        return DetectionDataset(
            [self.items[i] for i in indices], self.classes, self.transform, notes=self.notes
        )

    def load_image(self, index: int) -> np.ndarray:
        """Item ``index``'s pixels as uint8 ``(H, W, 3)``, untransformed."""
        item = self.items[index]
        if isinstance(item.image, np.ndarray):
            return item.image
        try:
            return np.asarray(load_image_rgb(item.image))
        except Exception as exc:  # Pillow plugins raise many types (OSError, SyntaxError, ...)
            raise DataError(
                f"{item.image}: {describe_error(exc, item.image)}; repair or delete the image "
                "(run `torchdojo doctor` on the folder)"
            ) from exc

    def __getitem__(self, index: int) -> Sample:
        item = self.items[index]
        pixels = self.load_image(index)  # (H, W, 3) uint8
        height, width = pixels.shape[:2]
        image = tv_tensors.Image(torch.tensor(pixels).permute(2, 0, 1))  # (3, H, W) uint8 copy
        boxes = torch.as_tensor(item.boxes, dtype=torch.float32).reshape(-1, 4)
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)  # the file may be larger than its XML said
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        target: dict[str, Any] = {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(height, width)),
            "labels": torch.as_tensor(item.labels, dtype=torch.int64).reshape(-1),
        }
        if self.transform is not None:
            image, target = self.transform(image, target)
        image = image.as_subclass(Tensor)
        image = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
        return image, {
            "boxes": target["boxes"].as_subclass(Tensor).float().reshape(-1, 4),
            "labels": target["labels"].as_subclass(Tensor).long(),
        }


def detection_collate(samples: Sequence[Sample]) -> tuple[Tensor, list[Target]]:
    """Stack images (all of one size) into ``(B, 3, H, W)`` and keep targets as a list."""
    shapes = {tuple(image.shape) for image, _ in samples}
    if len(shapes) > 1:
        raise ValueError(
            f"images of one batch differ in size {sorted(shapes)}; resize them to one size "
            "(detection_transforms(size=...))"
        )
    images = torch.stack([image for image, _ in samples])  # (B, 3, H, W)
    return images, [target for _, target in samples]


def detection_transforms(
    size: tuple[int, int],
    train: bool,
    *,
    zoom_out: float = 1.5,
    iou_crop: bool = True,
    vertical_flip: bool = True,
) -> v2.Compose:
    """Box-aware augmentation (SSD's recipe, tuned for small objects such as blood cells).

    Train: photometric distortion, zoom-out (canvas up to ``zoom_out`` times, p=0.3; objects
    shrink, so small cells keep it mild), SSD's random IoU crop, horizontal and vertical flips
    (cells and top-down scenes have no up), resize to ``size`` and dropping boxes the crop cut
    to nothing. Eval: resize only.

    Args:
        size: Output ``(H, W)``.
        train: Training pipeline (random) or evaluation (deterministic).
        zoom_out: Largest zoom-out factor (1 disables it).
        iou_crop: Use ``RandomIoUCrop``.
        vertical_flip: Also flip up-down.
    """
    resize = v2.Resize(list(size), antialias=True)
    if not train:
        return v2.Compose([resize])
    steps: list[v2.Transform] = [v2.RandomPhotometricDistort(p=0.5)]
    if zoom_out > 1.0:
        fill = {tv_tensors.Image: (124, 116, 104), "others": 0}  # ImageNet mean in uint8
        steps.append(v2.RandomZoomOut(fill=fill, side_range=(1.0, zoom_out), p=0.3))  # type: ignore[arg-type]
    if iou_crop:
        steps.append(v2.RandomIoUCrop(min_scale=0.5))
    steps.append(v2.RandomHorizontalFlip())
    if vertical_flip:
        steps.append(v2.RandomVerticalFlip())
    steps += [resize, v2.SanitizeBoundingBoxes(min_size=1.0)]
    return v2.Compose(steps)


# --------------------------------------------------------------------------- VOC folders


def voc_split(stems: Sequence[str], split: str) -> list[str]:
    """The seeded split of a VOC folder that has no ``ImageSets/Main/<split>.txt``.

    The file stems are sorted, shuffled with ``numpy.random.default_rng(SPLIT_SEED)`` and cut
    into 70 % train, 15 % val, 15 % test (val and test get at least one file each from three
    files on); ``trainval`` is train + val and ``all`` every file. The same names always give
    the same split.
    """
    names = sorted(stems)
    order = [names[i] for i in np.random.default_rng(SPLIT_SEED).permutation(len(names))]
    n = len(order)
    n_val = max(round(n * SPLIT_FRACTIONS[0]), 1 if n >= 3 else 0)
    n_test = max(round(n * SPLIT_FRACTIONS[1]), 1 if n >= 3 else 0)
    parts = {
        "test": order[:n_test],
        "val": order[n_test : n_test + n_val],
        "train": order[n_test + n_val :],
    }
    if split == "all":
        return names
    if split == "trainval":
        return sorted(parts["train"] + parts["val"])
    if split not in parts:
        raise ValueError(f"split must be one of {', '.join(VOC_SPLITS)}, not {split!r}")
    return sorted(parts[split])


def voc_stems(root: Path, split: str) -> list[str]:
    """The annotation stems of ``split``: ``ImageSets/Main/<split>.txt`` or :func:`voc_split`."""
    if split not in VOC_SPLITS:
        raise ValueError(f"split must be one of {', '.join(VOC_SPLITS)}, not {split!r}")
    listing = root / "ImageSets" / "Main" / f"{split}.txt"
    if split != "all" and listing.is_file():
        return [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
    return voc_split([p.stem for p in (root / "Annotations").glob("*.xml")], split)


def find_image(folder: Path, filename: str, stem: str) -> Path | None:
    """The image an annotation names, else ``<stem>.<any image extension>``, else None."""
    candidate = folder / filename
    if filename and candidate.is_file():
        return candidate
    for ext in IMAGE_EXTENSIONS:
        for name in (f"{stem}{ext}", f"{stem}{ext.upper()}"):
            if (folder / name).is_file():
                return folder / name
    return None


def clean_boxes(
    boxes: np.ndarray, width: int, height: int, source: str, notes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Clip boxes to ``[0, W] x [0, H]`` and drop empty ones, noting each change.

    Returns:
        The cleaned boxes and a bool mask of the rows kept.
    """
    clipped = boxes.copy()
    clipped[:, 0::2] = clipped[:, 0::2].clip(0, width)
    clipped[:, 1::2] = clipped[:, 1::2].clip(0, height)
    keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    for row, (before, after) in enumerate(zip(boxes, clipped, strict=True)):
        if not keep[row]:
            notes.append(f"{source}: box {before.tolist()} is empty, dropped")
        elif not np.array_equal(before, after):
            notes.append(f"{source}: box {before.tolist()} clipped to the {width}x{height} image")
    return clipped[keep], keep


def load_voc(
    root: str | Path,
    split: str = "trainval",
    classes: Sequence[str] | None = None,
    *,
    transform: DetectionTransform | None = None,
) -> DetectionDataset:
    """A Pascal VOC folder (``JPEGImages/``, ``Annotations/``, ``ImageSets/Main/``) as a dataset.

    Boxes are clipped to the image and empty boxes dropped; each change and each skipped
    annotation (its image missing) is recorded in ``dataset.notes``.

    Args:
        root: The folder.
        split: ``train``, ``val``, ``test``, ``trainval`` or ``all``. Without
            ``ImageSets/Main/<split>.txt`` the seeded split of :func:`voc_split` is used.
        classes: Class names in label order; default: every name found, sorted.
        transform: See :class:`DetectionDataset`.

    Raises:
        DataError: The folder lacks ``Annotations/``, a listed annotation is missing or
            malformed, or an object's class is not in ``classes``.
    """
    root = Path(root).expanduser()
    ann_dir, img_dir = root / "Annotations", root / "JPEGImages"
    if not ann_dir.is_dir():
        raise DataError(
            f"{root}: no Annotations/ folder; a VOC folder holds Annotations/*.xml and "
            "JPEGImages/*.jpg (and optionally ImageSets/Main/<split>.txt)"
        )
    stems = voc_stems(root, split)
    annotations = []
    for stem in stems:
        xml = ann_dir / f"{stem}.xml"
        if not xml.is_file():
            raise DataError(f"{xml}: listed in {split}.txt but missing; add it or unlist {stem}")
        annotations.append((xml, read_voc_xml(xml)))
    names = (
        list(classes)
        if classes is not None
        else sorted({n for _, a in annotations for n in a.labels})
    )
    index = {name: i + 1 for i, name in enumerate(names)}
    items: list[DetectionItem] = []
    notes: list[str] = []
    for xml, ann in annotations:
        item = _voc_item(xml, ann, img_dir, index, notes)
        if item is not None:
            items.append(item)
    for note in notes:
        logger.info("%s", note)
    return DetectionDataset(items, names, transform, notes=notes)


def _voc_item(
    xml: Path, ann: VocAnnotation, img_dir: Path, index: dict[str, int], notes: list[str]
) -> DetectionItem | None:
    image = find_image(img_dir, ann.filename, xml.stem)
    if image is None:
        notes.append(f"{xml.name}: image {ann.filename} not found in {img_dir}, skipped")
        return None
    unknown = sorted(set(ann.labels) - set(index))
    if unknown:
        raise DataError(
            f"{xml}: class {', '.join(map(repr, unknown))} is not in classes {list(index)}; "
            "fix the <name> or add the class"
        )
    width, height = ann.width, ann.height
    if width <= 0 or height <= 0:
        width, height = _image_size(image)
    boxes, keep = clean_boxes(ann.boxes, width, height, xml.name, notes)
    labels = np.asarray([index[n] for n in ann.labels], dtype=np.int64)[keep]
    return DetectionItem(image, boxes, labels)


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as img:
            return img.size
    except Exception as exc:  # Pillow plugins raise many types
        raise DataError(f"{path}: {describe_error(exc, path)}; repair or delete it") from exc


def bccd_folder(data_dir: str | Path | None = None) -> Path:
    """Where BCCD lives under a data root (``bccd/BCCD``), or a DataError saying where to put it."""
    from torchdojo.utils.paths import data_root

    root = data_root(data_dir)
    for folder in (root / "bccd" / "BCCD", root / "BCCD_Dataset" / "BCCD", root / "BCCD"):
        if (folder / "Annotations").is_dir():
            return folder
    raise DataError(
        f"no BCCD under {root}: put the Pascal VOC folder (JPEGImages/, Annotations/, "
        f"ImageSets/) at {root / 'bccd' / 'BCCD'} (git clone "
        "https://github.com/Shenggan/BCCD_Dataset)"
    )


def load_bccd(
    data_dir: str | Path | None = None,
    split: str = "train",
    *,
    transform: DetectionTransform | None = None,
) -> DetectionDataset:
    """BCCD blood-cell detection (364 640x480 images; official split train/val/test 205/87/72).

    Classes ``RBC``, ``WBC``, ``Platelets`` (labels 1, 2, 3). Two RBC boxes of the release
    (BloodImage_00338, BloodImage_00343) have zero area and are dropped (see ``notes``).

    Args:
        data_dir: The data root holding ``bccd/BCCD`` (default ``$TORCHDOJO_DATA``).
        split: ``train``, ``val``, ``test`` or ``trainval``.
        transform: See :class:`DetectionDataset`.
    """
    return load_voc(bccd_folder(data_dir), split, BCCD_CLASSES, transform=transform)


# --------------------------------------------------------------------------- COCO files


def load_coco(
    json_path: str | Path,
    images_dir: str | Path,
    *,
    classes: Sequence[str] | None = None,
    transform: DetectionTransform | None = None,
) -> DetectionDataset:
    """A COCO JSON file and its images folder as a detection dataset.

    Category ids map to labels 1..C in id order (or in the order of ``classes``, by name).
    Crowd annotations are dropped, boxes are clipped, and images whose file is missing are
    skipped; each change is recorded in ``dataset.notes``.

    Raises:
        DataError: A malformed file (see :func:`read_coco_json`) or a category not in ``classes``.
    """
    records = read_coco_json(json_path)
    images_dir = Path(images_dir).expanduser()
    names = list(classes) if classes is not None else records.classes
    by_name = {name: i + 1 for i, name in enumerate(names)}
    label_of: dict[int, int] = {}
    for cat in records.categories:
        if cat.name not in by_name:
            raise DataError(
                f"{records.path}: category {cat.name!r} is not in classes {names}; "
                "add it or remove its annotations"
            )
        label_of[cat.id] = by_name[cat.name]
    items: list[DetectionItem] = []
    notes: list[str] = []
    for image in records.images:
        path = images_dir / image.file_name
        if not path.is_file():
            notes.append(f"{image.file_name}: not found in {images_dir}, skipped")
            continue
        crowd = image.iscrowd
        if crowd.any():
            notes.append(f"{image.file_name}: {int(crowd.sum())} crowd annotation(s) dropped")
        width, height = (image.width, image.height)
        if width <= 0 or height <= 0:
            width, height = _image_size(path)
        boxes, keep = clean_boxes(image.boxes[~crowd], width, height, image.file_name, notes)
        labels = np.asarray([label_of[c] for c in image.category_ids], dtype=np.int64)
        items.append(DetectionItem(path, boxes, labels[~crowd][keep]))
    return DetectionDataset(items, names, transform, notes=notes)
