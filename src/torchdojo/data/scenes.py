"""Synthetic VOC-like scenes: shapes of five classes on cluttered, textured backgrounds.

No real, freely licensed natural-image detection/segmentation set exists offline, so this
seeded generator stands in for Pascal VOC. Each image holds 1-6 objects (circle, square,
triangle, star, ellipse) of random size, rotation and colour; the colour is drawn
independently of the class, so only geometry tells the classes apart. Backgrounds are
low-frequency colour fields with pixel noise and unlabelled clutter strokes of the same
colours, and later objects occlude earlier ones. Boxes cover the *visible* part of an object;
objects with less than ``MIN_VISIBLE`` of their area visible (or fewer than ``MIN_PIXELS``
pixels) are unlabelled for detection but keep their class in the semantic mask.

Image ``i`` of seed ``s`` depends only on ``(s, i)``: ``make_scenes(10)`` is the first ten of
``make_scenes(100)``. ``write_scenes_voc`` / ``write_scenes_coco`` write the same scenes as
real-format files for the own-data flow. Used by lessons/19_object_detection.py and the
scene-segmentation and object-detection recipes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors

from torchdojo.data.detection import (
    DetectionDataset,
    DetectionItem,
    DetectionTransform,
    voc_split,
)

SCENE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star", "ellipse")
MIN_VISIBLE = 0.35  # share of an object's pixels that must stay visible for it to get a box
MIN_PIXELS = 24  # and at least this many pixels
MAX_OBJECTS = 6


@dataclass(frozen=True)
class Scenes:
    """A batch of generated scenes.

    Attributes:
        images: uint8 ``(N, H, W, 3)``.
        boxes: Per image, float32 ``(k, 4)`` xyxy boxes of the visible objects.
        labels: Per image, int64 ``(k,)`` class ids in 1..C.
        masks: int64 ``(N, H, W)`` semantic class per pixel, 0 = background.
        instances: int32 ``(N, H, W)``: ``j + 1`` where object ``j`` of ``boxes[i]`` is visible,
            0 elsewhere (background and unlabelled, mostly hidden objects).
        classes: The C class names (label ``c`` is ``classes[c - 1]``).
    """

    images: np.ndarray
    boxes: list[np.ndarray]
    labels: list[np.ndarray]
    masks: np.ndarray
    instances: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.images)


def _polygon(
    kind: str, cx: float, cy: float, r: float, angle: float, aspect: float
) -> list[tuple[float, float]]:
    """Vertices of one shape of circumradius ``r`` centred on (cx, cy), rotated by ``angle``."""
    if kind in ("circle", "ellipse"):
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        x, y = r * np.cos(t), r * np.sin(t) * (aspect if kind == "ellipse" else 1.0)
    elif kind == "star":
        t = np.linspace(0, 2 * np.pi, 10, endpoint=False)
        radius = np.where(np.arange(10) % 2 == 0, r, r * 0.42)
        x, y = radius * np.cos(t), radius * np.sin(t)
    else:
        sides = {"square": 4, "triangle": 3}[kind]
        t = np.linspace(0, 2 * np.pi, sides, endpoint=False)
        x, y = r * np.cos(t), r * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return list(zip((cx + c * x - s * y).tolist(), (cy + s * x + c * y).tolist(), strict=True))


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A low-frequency colour field plus clutter strokes, float ``(H, W, 3)`` in [0, 255]."""
    grid = rng.uniform(0, 255, (int(rng.integers(2, 6)), int(rng.integers(2, 6)), 3))
    field = Image.fromarray(grid.astype(np.uint8), "RGB").resize((w, h), Image.Resampling.BICUBIC)
    canvas = Image.fromarray(np.asarray(field), "RGB")
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(1, 5))):  # unlabelled strokes in object-like colours
        x0, x1 = rng.uniform(0, w, 2)
        y0, y1 = rng.uniform(0, h, 2)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.line([(x0, y0), (x1, y1)], fill=colour, width=int(rng.integers(2, max(3, w // 24))))
    return np.asarray(canvas, dtype=np.float64)


def _render_one(
    rng: np.random.Generator, h: int, w: int, classes: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One scene: image uint8, boxes, labels, semantic mask, instance mask."""
    image = _background(rng, h, w)
    semantic = np.zeros((h, w), dtype=np.int64)
    owner = np.zeros((h, w), dtype=np.int32)  # index + 1 of the object drawn last at a pixel
    yy, xx = np.mgrid[0:h, 0:w]
    side = min(h, w)
    drawn_area, object_labels = [], []
    for j in range(int(rng.integers(1, MAX_OBJECTS + 1))):
        label = int(rng.integers(1, len(classes) + 1))
        r = rng.uniform(0.09, 0.24) * side
        cx, cy = rng.uniform(0.1 * w, 0.9 * w), rng.uniform(0.1 * h, 0.9 * h)
        poly = _polygon(
            classes[label - 1], cx, cy, r, rng.uniform(0, 2 * np.pi), rng.uniform(0.4, 0.6)
        )
        stencil = Image.new("L", (w, h), 0)
        ImageDraw.Draw(stencil).polygon(poly, fill=1)
        inside = np.asarray(stencil, dtype=bool)
        if not inside.any():
            continue
        colour = rng.uniform(0, 255, 3)
        phi = rng.uniform(0, 2 * np.pi)  # a linear shading gradient across the object
        shade = rng.uniform(0, 40) * ((xx - cx) * np.cos(phi) + (yy - cy) * np.sin(phi)) / r
        image[inside] = np.clip(colour + shade[inside, None], 0, 255)
        semantic[inside] = label
        owner[inside] = j + 1
        drawn_area.append((j + 1, int(inside.sum())))
        object_labels.append(label)
    image += rng.normal(0, rng.uniform(4, 14), image.shape)  # sensor-like noise
    boxes, labels = [], []
    instances = np.zeros((h, w), dtype=np.int32)
    for (j, area), label in zip(drawn_area, object_labels, strict=True):
        visible = owner == j
        count = int(visible.sum())
        if count < MIN_PIXELS or count < MIN_VISIBLE * area:
            continue  # mostly hidden: no box, but its pixels keep their class
        ys, xs = np.nonzero(visible)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        labels.append(label)
        instances[visible] = len(boxes)
    pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return (
        pixels,
        np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        np.asarray(labels, dtype=np.int64),
        semantic,
        instances,
    )


def make_scenes(
    n: int,
    size: tuple[int, int] = (128, 128),
    seed: int = 0,
    classes: Sequence[str] = SCENE_CLASSES,
) -> Scenes:
    """Generate ``n`` seeded scenes.

    Args:
        n: Number of images.
        size: ``(H, W)``.
        seed: Image ``i`` is drawn from ``numpy.random.default_rng([seed, i])``.
        classes: Shape names from :data:`SCENE_CLASSES`, in label order.

    Raises:
        ValueError: An unknown shape name or an image under 16 pixels.
    """
    unknown = [c for c in classes if c not in SCENE_CLASSES]
    if unknown or not classes:
        raise ValueError(f"classes must be names from {SCENE_CLASSES}, got {list(classes)}")
    h, w = size
    if min(h, w) < 16:
        raise ValueError(f"size must be at least 16x16 pixels, got {size}")
    parts = [_render_one(np.random.default_rng([seed, i]), h, w, classes) for i in range(n)]
    return Scenes(
        images=np.stack([p[0] for p in parts]) if parts else np.zeros((0, h, w, 3), np.uint8),
        boxes=[p[1] for p in parts],
        labels=[p[2] for p in parts],
        masks=np.stack([p[3] for p in parts]) if parts else np.zeros((0, h, w), np.int64),
        instances=np.stack([p[4] for p in parts]) if parts else np.zeros((0, h, w), np.int32),
        classes=tuple(classes),
    )


class SceneDetectionDataset(DetectionDataset):
    """Generated scenes as detection samples (see :class:`DetectionDataset`); ``scenes`` holds
    the arrays, masks included."""

    def __init__(self, scenes: Scenes, transform: DetectionTransform | None = None) -> None:
        items = [
            DetectionItem(image, boxes, labels)
            for image, boxes, labels in zip(scenes.images, scenes.boxes, scenes.labels, strict=True)
        ]
        super().__init__(items, scenes.classes, transform)
        self.scenes = scenes


def scenes_detection(
    n: int,
    size: tuple[int, int] = (128, 128),
    seed: int = 0,
    *,
    transform: DetectionTransform | None = None,
) -> SceneDetectionDataset:
    """``n`` generated scenes as ``(image (3, H, W) in [0, 1], {"boxes", "labels"})``."""
    return SceneDetectionDataset(make_scenes(n, size, seed), transform)


SegmentationTransform = Callable[[Any, Any], tuple[Any, Any]]


class SceneSegmentationDataset(Dataset[tuple[Tensor, Tensor]]):
    """Generated scenes as ``(image float32 (3, H, W) in [0, 1], mask int64 (H, W))``.

    Args:
        scenes: From :func:`make_scenes`.
        transform: Optional ``transforms.v2`` callable on ``(tv_tensors.Image uint8,
            tv_tensors.Mask)``.

    Attributes:
        classes: ``["background", *scenes.classes]`` (mask value ``k`` is ``classes[k]``).
    """

    def __init__(self, scenes: Scenes, transform: SegmentationTransform | None = None) -> None:
        self.scenes = scenes
        self.transform = transform
        self.classes = ["background", *scenes.classes]

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image: Any = tv_tensors.Image(torch.tensor(self.scenes.images[index]).permute(2, 0, 1))
        mask: Any = tv_tensors.Mask(torch.tensor(self.scenes.masks[index]))
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image.as_subclass(Tensor).float() / 255.0, mask.as_subclass(Tensor).long()


def scenes_segmentation(
    n: int,
    size: tuple[int, int] = (128, 128),
    seed: int = 0,
    *,
    transform: SegmentationTransform | None = None,
) -> SceneSegmentationDataset:
    """``n`` generated scenes as segmentation samples (6 classes with background)."""
    return SceneSegmentationDataset(make_scenes(n, size, seed), transform)


# --------------------------------------------------------------------------- real formats

_VOC_OBJECT = """  <object>
    <name>{name}</name>
    <pose>Unspecified</pose>
    <truncated>0</truncated>
    <difficult>0</difficult>
    <bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox>
  </object>
"""


def _voc_xml(filename: str, w: int, h: int, boxes: np.ndarray, names: list[str]) -> str:
    objects = "".join(
        _VOC_OBJECT.format(
            name=escape(name), x0=int(b[0]), y0=int(b[1]), x1=int(b[2]), y1=int(b[3])
        )
        for b, name in zip(boxes, names, strict=True)
    )
    return (
        "<annotation>\n  <folder>JPEGImages</folder>\n"
        f"  <filename>{escape(filename)}</filename>\n"
        f"  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>\n"
        f"  <segmented>1</segmented>\n{objects}</annotation>\n"
    )


def _palette() -> list[int]:
    """Pascal VOC's colour map (class k -> a distinct colour; 255 = ignore is cream)."""
    out = []
    for k in range(256):
        r = g = b = 0
        c = k
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        out += [r, g, b]
    return out


def write_scenes_voc(
    folder: str | Path,
    n: int,
    size: tuple[int, int] = (128, 128),
    seed: int = 0,
) -> Path:
    """Write ``n`` scenes as a Pascal VOC folder.

    Writes ``JPEGImages/scene_XXXXX.jpg``, ``Annotations/*.xml``, ``SegmentationClass/*.png``
    (palette PNG whose pixel values are class indices, 0 = background) and
    ``ImageSets/Main/{train,val,test,trainval}.txt`` (the seeded split of
    :func:`~torchdojo.data.detection.voc_split`).

    Returns:
        The folder.
    """
    root = Path(folder)
    for sub in ("JPEGImages", "Annotations", "SegmentationClass", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    scenes = make_scenes(n, size, seed)
    h, w = size
    palette = _palette()
    stems = [f"scene_{i:05d}" for i in range(n)]
    for stem, image, boxes, labels, mask in zip(
        stems, scenes.images, scenes.boxes, scenes.labels, scenes.masks, strict=True
    ):
        Image.fromarray(image, "RGB").save(root / "JPEGImages" / f"{stem}.jpg", quality=95)
        names = [scenes.classes[k - 1] for k in labels.tolist()]
        xml = _voc_xml(f"{stem}.jpg", w, h, boxes, names)
        (root / "Annotations" / f"{stem}.xml").write_text(xml, encoding="utf-8")
        png = Image.fromarray(mask.astype(np.uint8), "P")
        png.putpalette(palette)
        png.save(root / "SegmentationClass" / f"{stem}.png")
    for split in ("train", "val", "test", "trainval"):
        lines = "".join(f"{s}\n" for s in voc_split(stems, split))
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text(lines, encoding="utf-8")
    return root


def write_scenes_coco(
    json_path: str | Path,
    images_dir: str | Path,
    n: int,
    size: tuple[int, int] = (128, 128),
    seed: int = 0,
) -> Path:
    """Write ``n`` scenes as a COCO detection file plus PNG images.

    Categories get ids 1..5 in :data:`SCENE_CLASSES` order; ``bbox`` is COCO's
    ``[x, y, width, height]`` and ``area`` the visible pixel count.

    Returns:
        The JSON path.
    """
    json_path, images_dir = Path(json_path), Path(images_dir)
    images_dir.mkdir(parents=True, exist_ok=True)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    scenes = make_scenes(n, size, seed)
    h, w = size
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for i, (image, boxes, labels, inst) in enumerate(
        zip(scenes.images, scenes.boxes, scenes.labels, scenes.instances, strict=True)
    ):
        name = f"scene_{i:05d}.png"
        Image.fromarray(image, "RGB").save(images_dir / name)
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        for j, (box, label) in enumerate(zip(boxes.tolist(), labels.tolist(), strict=True)):
            x0, y0, x1, y1 = box
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": int(label),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": int((inst == j + 1).sum()),
                    "iscrowd": 0,
                }
            )
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(scenes.classes)]
    data = {"images": images, "annotations": annotations, "categories": categories}
    json_path.write_text(json.dumps(data), encoding="utf-8")
    return json_path
