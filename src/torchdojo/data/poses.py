"""Multi-person pose data: synthetic stick figures, COCO keypoint files, and OpenPose targets.

Nothing real and free exists for multi-person pose on a laptop, so :func:`render_scene` draws
a seeded synthetic twin of COCO's person keypoints (seed 003 ch4; lessons/21_pose.py):

- 1-4 stick figures per image, each with COCO's 17 keypoints and 19-limb skeleton
  (:data:`~torchdojo.nn.pose.COCO_KEYPOINTS`, :data:`~torchdojo.nn.pose.COCO_SKELETON`):
  a head disc with eyes, nose and ears, a shoulder line, a spine, a hip line, two-segment arms
  and legs. Every figure faces the viewer (its left side is on the image's right when
  upright), leans up to 30 degrees, and has its own height (35-70 % of the image), limb
  angles, limb thickness and colour.
- Figures may overlap (at most 0.35 box IoU between two figures); one drawn later hides
  the earlier one.
- Backgrounds are textured: a smooth random colour field, stripes, a few distractor lines and
  discs, and pixel noise.
- Visibility flags as in COCO: 2 visible, 1 inside the image but covered by a later figure,
  0 outside the image (then x = y = 0).

A sample is ``(image float32 (3, H, W) in [0, 1], {"keypoints": float32 (P, K, 3) x, y, v in
pixels, "boxes": float32 (P, 4) xyxy})``; a figure's box is the bounding box of its drawn
pixels. Own data comes as a COCO person-keypoints JSON (:func:`load_coco_keypoints`);
:func:`write_pose_coco` writes the synthetic scenes in that format.

Training targets (Cao et al., 2017): :func:`heatmaps` (a Gaussian per keypoint, the maximum
over people, plus a background channel) and :func:`pafs` (per limb, the unit vector from its
first to its second keypoint on the pixels within ``width`` of the segment, averaged where
people overlap), both on a grid ``stride`` times coarser than the image.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor
from torch.utils.data import Dataset

from torchdojo.data.errors import DataError
from torchdojo.nn.pose import COCO_KEYPOINTS, COCO_SKELETON

PoseTarget = dict[str, Tensor]
PoseSample = tuple[Tensor, PoseTarget]
MAX_OVERLAP = 0.35  # largest box IoU between two figures of a scene
SUPERSAMPLE = 2  # shapes are drawn this many times larger, then averaged down

# ------------------------------------------------------------------ synthetic figures


@dataclass(frozen=True)
class _Figure:
    points: np.ndarray  # (17, 2) keypoints x, y in pixels
    neck: np.ndarray  # (2,)
    hip: np.ndarray  # (2,) midpoint of the hips
    head: np.ndarray  # (2,) head centre
    head_radius: float
    thickness: int
    colour: tuple[float, float, float]


def _direction(down: np.ndarray, side: np.ndarray, angle: float, outward: float) -> np.ndarray:
    """Unit vector ``angle`` radians from ``down`` towards ``outward * side``."""
    return np.cos(angle) * down + np.sin(angle) * outward * side


def _pose(rng: np.random.Generator, size: int) -> _Figure:
    """One figure around the origin (hip midpoint at 0): its 17 keypoints and drawing sizes."""
    h = size * rng.uniform(0.35, 0.7) / 7.6  # body unit: the figure is ~7.6 units tall
    lean = rng.uniform(-0.5, 0.5)
    up = np.array([np.sin(lean), -np.cos(lean)])  # image y points down
    down, side = -up, np.array([np.cos(lean), np.sin(lean)])  # side: the figure's left
    hip = np.zeros(2)
    neck = hip + up * 2.6 * h * rng.uniform(0.9, 1.1)
    head = neck + up * 1.0 * h
    shoulder, hip_half = 0.85 * h * rng.uniform(0.8, 1.2), 0.55 * h * rng.uniform(0.8, 1.2)
    points = np.zeros((17, 2))
    points[0] = head - up * 0.15 * h  # nose
    points[1], points[2] = (
        head + up * 0.15 * h + side * 0.25 * h,
        head + up * 0.15 * h - side * 0.25 * h,
    )
    points[3], points[4] = head + side * 0.6 * h, head - side * 0.6 * h  # ears
    for k, outward in ((0, 1.0), (1, -1.0)):  # left (+side), then right
        points[5 + k] = neck + outward * side * shoulder
        points[11 + k] = hip + outward * side * hip_half
        arm = rng.uniform(0.15, 2.8)  # radians from hanging down, outwards
        forearm = arm + rng.uniform(-1.6, 1.6)
        points[7 + k] = points[5 + k] + 1.35 * h * _direction(down, side, arm, outward)
        points[9 + k] = points[7 + k] + 1.2 * h * _direction(down, side, forearm, outward)
        thigh = rng.uniform(-0.1, 0.6)
        shin = thigh + rng.uniform(-0.6, 0.4)
        points[13 + k] = points[11 + k] + 1.9 * h * _direction(down, side, thigh, outward)
        points[15 + k] = points[13 + k] + 1.8 * h * _direction(down, side, shin, outward)
    thickness = max(1, round(h * rng.uniform(0.25, 0.55)))
    colour = tuple(float(c) for c in rng.uniform(0, 1, 3))
    return _Figure(points, neck, hip, head, 0.6 * h, thickness, colour)  # type: ignore[arg-type]


def _moved(fig: _Figure, offset: np.ndarray) -> _Figure:
    return dataclasses.replace(
        fig,
        points=fig.points + offset,
        neck=fig.neck + offset,
        hip=fig.hip + offset,
        head=fig.head + offset,
    )


def _xy(point: np.ndarray, scale: int) -> tuple[float, float]:
    """Continuous pixel coordinates -> PIL's on a ``scale`` times larger canvas (PIL puts
    pixel ``i``'s centre at ``i``)."""
    x, y = np.asarray(point, np.float64) * scale - 0.5
    return float(x), float(y)


def _disc(
    draw: ImageDraw.ImageDraw, centre: np.ndarray, radius: float, fill: Any, scale: int
) -> None:
    x, y = _xy(centre, scale)
    r = max(radius * scale, 0.5)
    draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)


def _segment(
    draw: ImageDraw.ImageDraw, a: np.ndarray, b: np.ndarray, fill: Any, width: float, scale: int
) -> None:
    """A thick line with round ends."""
    draw.line([_xy(a, scale), _xy(b, scale)], fill=fill, width=max(1, round(width * scale)))
    for end in (a, b):
        _disc(draw, end, width / 2, fill, scale)


def _draw_figure(draw: ImageDraw.ImageDraw, fig: _Figure, fill: Any, scale: int) -> None:
    """Draw ``fig`` (limbs, head, ears) on a canvas ``scale`` times the image size."""
    p = fig.points
    segments = [(p[5], p[6]), (p[11], p[12]), (fig.neck, fig.hip)]
    for k in (0, 1):
        segments += [(p[5 + k], p[7 + k]), (p[7 + k], p[9 + k])]
        segments += [(p[11 + k], p[13 + k]), (p[13 + k], p[15 + k])]
    for a, b in segments:
        _segment(draw, a, b, fill, fig.thickness, scale)
    _disc(draw, fig.head, fig.head_radius, fill, scale)
    for ear in (p[3], p[4]):
        _disc(draw, ear, fig.head_radius / 3, fill, scale)


def _draw_face(draw: ImageDraw.ImageDraw, fig: _Figure, scale: int) -> None:
    """Eyes and nose as small dots that contrast with the head."""
    dark = _rgb((np.asarray(fig.colour) + 0.5) % 1.0)
    for k in (0, 1, 2):
        _disc(draw, fig.points[k], max(0.6, fig.head_radius * 0.25), dark, scale)


def _rgb(colour: Any) -> tuple[int, int, int]:
    r, g, b = (int(round(float(c) * 255)) for c in np.clip(colour, 0, 1))
    return r, g, b


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A textured background (H, W, 3) in [0, 1]: smooth colour field and stripes."""
    grid = int(rng.integers(2, 8))
    coarse = torch.from_numpy(rng.uniform(0.15, 0.85, (1, 3, grid, grid)).astype(np.float32))
    smooth = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic")
    image = smooth[0].permute(1, 2, 0).numpy().copy()  # (H, W, 3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle, freq = rng.uniform(0, np.pi), rng.uniform(2, 12)
    stripes = np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)))
    image += (rng.uniform(0, 0.12) * stripes)[..., None]
    return np.clip(image, 0, 1)


def _distractors(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int, scale: int
) -> None:
    """Up to five random lines and discs, so that "a thick line" alone is no person."""
    for _ in range(int(rng.integers(0, 6))):
        colour = _rgb(rng.uniform(0, 1, 3))
        a, b = rng.uniform(0, size, 2), rng.uniform(0, size, 2)
        if rng.uniform() < 0.6:
            _segment(draw, a, b, colour, float(rng.uniform(1, 3.5)), scale)
        else:
            _disc(draw, a, float(rng.uniform(2, size / 10)), colour, scale)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / max(union, 1e-9))


def _extent(fig: _Figure) -> np.ndarray:
    """xyxy around the figure's keypoints and head."""
    pts = np.vstack(
        [fig.points, fig.head[None] - fig.head_radius, fig.head[None] + fig.head_radius]
    )
    pad = fig.thickness / 2
    return np.concatenate([pts.min(0) - pad, pts.max(0) + pad])


def _place(rng: np.random.Generator, size: int, count: int) -> list[_Figure]:
    """``count`` figures at random places whose extents overlap by at most MAX_OVERLAP."""
    figures: list[_Figure] = []
    boxes: list[np.ndarray] = []
    for _ in range(count):
        for _ in range(20):  # tries
            fig = _pose(rng, size)
            box = _extent(fig)
            centre = rng.uniform(0.15, 0.85, 2) * size
            offset = centre - (box[:2] + box[2:]) / 2
            box = box + np.tile(offset, 2)
            if all(_iou(box, other) <= MAX_OVERLAP for other in boxes):
                figures.append(_moved(fig, offset))
                boxes.append(box)
                break
    return figures


def render_scene(
    rng: np.random.Generator, size: int, *, max_people: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One synthetic scene: ``image uint8 (H, W, 3)``, ``keypoints (P, 17, 3)``, ``boxes (P, 4)``.

    Shapes are drawn at twice the size and averaged down (anti-aliased edges).

    Args:
        rng: The scene's random generator (seed it per scene for reproducible data).
        size: Side of the square image in pixels.
        max_people: Most figures in the scene (at least 1).
    """
    background = _background(rng, size)
    scale = SUPERSAMPLE
    canvas = Image.fromarray(_to_uint8(background)).resize(
        (size * scale,) * 2, Image.Resampling.NEAREST
    )
    draw = ImageDraw.Draw(canvas)
    _distractors(draw, rng, size, scale)
    figures = _place(rng, size, int(rng.integers(1, max_people + 1)))
    masks = []
    for fig in figures:
        colour = np.asarray(fig.colour)
        local = background[_clip_box(_extent(fig), size)].reshape(-1, 3).mean(0)
        if np.abs(colour - local).sum() < 0.6:  # too close to the background: invert
            colour = 1.0 - colour
        shown = dataclasses.replace(
            fig, colour=(float(colour[0]), float(colour[1]), float(colour[2]))
        )
        _draw_figure(draw, shown, _rgb(colour), scale)
        _draw_face(draw, shown, scale)
        mask = Image.new("L", (size, size))
        _draw_figure(ImageDraw.Draw(mask), fig, 255, 1)
        masks.append(np.asarray(mask) > 0)
    image = np.asarray(canvas.resize((size, size), Image.Resampling.BOX), np.float32) / 255
    image = image + rng.normal(0, rng.uniform(0.01, 0.05), image.shape).astype(np.float32)
    keypoints, boxes = _annotate(figures, masks, size)
    return _to_uint8(image), keypoints, boxes


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def _clip_box(box: np.ndarray, size: int) -> tuple[slice, slice]:
    x0, y0, x1, y1 = (int(np.clip(v, 0, size - 1)) for v in box)
    return slice(y0, max(y1, y0 + 1)), slice(x0, max(x1, x0 + 1))


def _annotate(
    figures: list[_Figure], masks: list[np.ndarray], size: int
) -> tuple[np.ndarray, np.ndarray]:
    """COCO keypoints (x, y, v) and mask boxes; figures with no pixel in the image are left out."""
    keypoints, boxes = [], []
    for n, (fig, mask) in enumerate(zip(figures, masks, strict=True)):
        ys, xs = mask.nonzero()
        if len(xs) == 0:
            continue
        later = np.any(masks[n + 1 :], axis=0) if n + 1 < len(masks) else np.zeros_like(mask)
        kps = np.zeros((len(fig.points), 3), np.float32)
        for k, (x, y) in enumerate(fig.points):
            if 0 <= x < size and 0 <= y < size:
                kps[k] = (x, y, 1 if later[int(y), int(x)] else 2)
        keypoints.append(kps)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    K = len(COCO_KEYPOINTS)
    return (
        np.asarray(keypoints, np.float32).reshape(-1, K, 3),
        np.asarray(boxes, np.float32).reshape(-1, 4),
    )


def to_sample(image: np.ndarray, keypoints: np.ndarray, boxes: np.ndarray) -> PoseSample:
    """``(image (3, H, W) float in [0, 1], {"keypoints", "boxes"})`` from a uint8 HWC image."""
    x = torch.from_numpy(image).permute(2, 0, 1).float() / 255  # (3, H, W)
    target = {"keypoints": torch.from_numpy(keypoints), "boxes": torch.from_numpy(boxes)}
    return x, target


class SyntheticPoses(Dataset[PoseSample]):
    """``n`` seeded synthetic scenes (see the module docstring); scene ``i`` is always the same.

    Scenes are drawn on first access and kept as uint8 arrays (48 KB each at 128 px).

    Args:
        n: Number of scenes.
        size: Side of the square images in pixels.
        seed: Seed of the set; scene ``i`` uses ``numpy.random.default_rng([seed, i])``.
        max_people: Most figures per scene.
    """

    keypoint_names = COCO_KEYPOINTS
    skeleton = COCO_SKELETON

    def __init__(self, n: int, *, size: int = 128, seed: int = 0, max_people: int = 4) -> None:
        self.n, self.size, self.seed, self.max_people = n, size, seed, max_people
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return self.n

    def scene(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scene ``index`` as ``(image uint8 (H, W, 3), keypoints (P, K, 3), boxes (P, 4))``."""
        if index not in self._cache:
            rng = np.random.default_rng([self.seed, index])
            self._cache[index] = render_scene(rng, self.size, max_people=self.max_people)
        return self._cache[index]

    def __getitem__(self, index: int) -> PoseSample:
        return to_sample(*self.scene(index))


# ------------------------------------------------------------------------ COCO files


def write_pose_coco(
    json_path: str | Path, images_dir: str | Path, n: int, size: int = 128, seed: int = 0
) -> Path:
    """Write ``n`` synthetic scenes as PNGs in ``images_dir`` and a COCO person-keypoints JSON.

    The JSON has ``images``, ``annotations`` (``keypoints`` as 51 numbers x, y, v;
    ``num_keypoints``; ``bbox`` x, y, w, h; ``area`` = box area; ``iscrowd`` 0) and one
    ``categories`` entry, ``person``, with COCO's keypoint names and 1-based skeleton.
    """
    json_path, images_dir = Path(json_path), Path(images_dir)
    images_dir.mkdir(parents=True, exist_ok=True)
    data = SyntheticPoses(n, size=size, seed=seed)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for index in range(n):
        image, keypoints, boxes = data.scene(index)
        name = f"{index:06d}.png"
        Image.fromarray(image).save(images_dir / name)
        images.append({"id": index + 1, "file_name": name, "width": size, "height": size})
        for kps, box in zip(keypoints, boxes, strict=True):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": index + 1,
                    "category_id": 1,
                    "keypoints": [round(float(v), 2) for v in kps.flatten()],
                    "num_keypoints": int((kps[:, 2] > 0).sum()),
                    "bbox": [float(box[0]), float(box[1]), w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(
        json.dumps(
            {"images": images, "annotations": annotations, "categories": [person_category()]}
        )
    )
    return json_path


def person_category(
    names: Sequence[str] = COCO_KEYPOINTS, skeleton: Sequence[tuple[int, int]] = COCO_SKELETON
) -> dict[str, Any]:
    """COCO's ``person`` category entry (1-based skeleton, as COCO writes it)."""
    return {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(names),
        "skeleton": [[a + 1, b + 1] for a, b in skeleton],
    }


@dataclass
class CocoKeypoints(Dataset[PoseSample]):
    """People with keypoints from a COCO JSON, images resized to ``size x size``.

    Built by :func:`load_coco_keypoints`. Keypoints and boxes are scaled with the image
    (x by ``size / width``, y by ``size / height``: the aspect ratio is not kept).
    """

    files: list[Path]
    keypoints: list[np.ndarray]  # per image (P, K, 3) in the file's pixels
    boxes: list[np.ndarray]  # per image (P, 4) xyxy
    keypoint_names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]
    size: int = 128

    def __len__(self) -> int:
        return len(self.files)

    def scene(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Image ``index`` resized, as ``(uint8 (H, W, 3), keypoints, boxes)``."""
        with Image.open(self.files[index]) as img:
            rgb = img.convert("RGB")
            scale = np.array([self.size / rgb.width, self.size / rgb.height], np.float32)
            image = np.array(rgb.resize((self.size, self.size), Image.Resampling.BILINEAR))
        kps = self.keypoints[index].copy()
        kps[..., :2] *= scale
        return image, kps, self.boxes[index] * np.tile(scale, 2)

    def __getitem__(self, index: int) -> PoseSample:
        return to_sample(*self.scene(index))


def load_coco_keypoints(
    json_path: str | Path, images_dir: str | Path, *, size: int = 128
) -> CocoKeypoints:
    """Read COCO person keypoints (``person_keypoints_*.json``) and their images.

    Crowd annotations and people without a labelled keypoint are skipped; images without
    people are kept (they teach the background). Keypoint names and skeleton come from the
    ``person`` category when it has them, else COCO's 17.

    Raises:
        DataError: One line naming the file: missing keys, a keypoint list of the wrong
            length, an annotation for an unknown image id, a missing image file.
    """
    json_path, images_dir = Path(json_path), Path(images_dir)
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(
            f"{json_path}: not a readable COCO JSON ({err}); fix or re-export it"
        ) from None
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise DataError(
            f"{json_path}: missing key 'images' or 'annotations'; a COCO keypoints file has both"
        )
    names, skeleton = _category_layout(json_path, data.get("categories", []))
    images: dict[Any, dict[str, Any]] = {}
    for n, entry in enumerate(data["images"]):
        _require(json_path, entry, ("id", "file_name"), f"images[{n}]")
        images[entry["id"]] = entry
    people: dict[Any, list[np.ndarray]] = {key: [] for key in images}
    for n, ann in enumerate(data["annotations"]):
        _require(json_path, ann, ("image_id", "keypoints"), f"annotations[{n}]")
        if ann["image_id"] not in images:
            raise DataError(
                f"{json_path}: annotations[{n}] names image_id {ann['image_id']!r}, which no "
                "entry of 'images' has; add the image or drop the annotation"
            )
        kps = np.asarray(ann["keypoints"], np.float32)
        if kps.size != 3 * len(names):
            raise DataError(
                f"{json_path}: annotations[{n}] has {kps.size} keypoint numbers, expected "
                f"{3 * len(names)} (x, y, v for each of {len(names)} keypoints)"
            )
        kps = kps.reshape(len(names), 3)
        if ann.get("iscrowd", 0) or not (kps[:, 2] > 0).any():
            continue
        people[ann["image_id"]].append(
            np.concatenate([kps, _box(ann, kps)[None].repeat(len(names), 0)], 1)
        )
    files, keypoints, boxes = [], [], []
    for key, entry in images.items():
        path = images_dir / entry["file_name"]
        if not path.is_file():
            raise DataError(
                f"{json_path}: image {entry['file_name']!r} is not in {images_dir}; put it there or pass the right images folder"
            )
        rows = np.asarray(people[key], np.float32).reshape(-1, len(names), 7)
        files.append(path)
        keypoints.append(rows[..., :3].copy())
        boxes.append(rows[:, 0, 3:].copy())
    return CocoKeypoints(files, keypoints, boxes, names, skeleton, size)


def _require(path: Path, entry: Any, keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if not isinstance(entry, dict) or k not in entry]
    if missing:
        raise DataError(
            f"{path}: {where} has no {', '.join(repr(k) for k in missing)}; every COCO {where.split('[')[0]} entry needs it"
        )


def _category_layout(
    path: Path, categories: list[dict[str, Any]]
) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...]]:
    for category in categories:
        if isinstance(category, dict) and category.get("keypoints"):
            names = tuple(str(n) for n in category["keypoints"])
            try:
                skeleton = tuple((int(a) - 1, int(b) - 1) for a, b in category.get("skeleton", []))
            except (TypeError, ValueError):
                raise DataError(
                    f"{path}: category 'skeleton' must be pairs of 1-based keypoint numbers"
                ) from None
            if any(not (0 <= k < len(names)) for limb in skeleton for k in limb):
                raise DataError(
                    f"{path}: category 'skeleton' names a keypoint beyond the {len(names)} listed"
                )
            return names, skeleton or COCO_SKELETON
    return COCO_KEYPOINTS, COCO_SKELETON


def _box(ann: dict[str, Any], kps: np.ndarray) -> np.ndarray:
    """xyxy from the annotation's ``bbox`` (x, y, w, h), else around its labelled keypoints."""
    if "bbox" in ann and len(ann["bbox"]) == 4:
        x, y, w, h = (float(v) for v in ann["bbox"])
        return np.array([x, y, x + w, y + h], np.float32)
    labelled = kps[kps[:, 2] > 0, :2]
    return np.concatenate([labelled.min(0), labelled.max(0)]).astype(np.float32)


# --------------------------------------------------------------------------- targets


def _cell_coords(keypoints: Tensor, stride: int) -> Tensor:
    """Pixel coordinates -> grid-cell index coordinates (cell j is centred at stride (j + 0.5))."""
    return keypoints[..., :2] / stride - 0.5


def heatmaps(
    keypoints: Tensor, out_size: tuple[int, int], sigma: float, *, stride: int = 4
) -> Tensor:
    """Keypoint confidence maps ``(K + 1, h, w)``: a Gaussian per labelled keypoint (the maximum
    over people, as in the paper), and ``1 - max`` as the last, background, channel.

    Args:
        keypoints: ``(P, K, 3)`` x, y, v in image pixels; keypoints with v = 0 are skipped.
        out_size: ``(h, w)`` of the maps.
        sigma: Spread of each Gaussian, in map cells.
        stride: Image pixels per map cell.
    """
    P, K = keypoints.shape[:2]
    h, w = out_size
    ys = torch.arange(h, dtype=torch.float32)[:, None]  # (h, 1)
    xs = torch.arange(w, dtype=torch.float32)[None, :]  # (1, w)
    centre = _cell_coords(keypoints.float(), stride)  # (P, K, 2)
    d2 = (xs - centre[..., 0, None, None]) ** 2 + (
        ys - centre[..., 1, None, None]
    ) ** 2  # (P, K, h, w)
    gauss = torch.exp(-d2 / (2 * sigma**2)) * (keypoints[..., 2, None, None] > 0)
    maps = gauss.amax(0) if P else torch.zeros(K, h, w)  # (K, h, w)
    return torch.cat([maps, 1 - maps.amax(0, keepdim=True)])  # (K + 1, h, w)


def pafs(
    keypoints: Tensor,
    skeleton: Sequence[tuple[int, int]],
    out_size: tuple[int, int],
    width: float,
    *,
    stride: int = 4,
) -> Tensor:
    """Part affinity fields ``(2 L, h, w)``: for limb ``l = (a, b)`` channels ``2 l, 2 l + 1``
    hold the unit vector from keypoint a to b on cells within ``width`` of the segment (and
    between its ends), averaged over the people whose limbs cover a cell; zero elsewhere.

    Args:
        keypoints: ``(P, K, 3)`` x, y, v in image pixels; a limb needs both ends labelled.
        skeleton: ``(a, b)`` keypoint indices of the L limbs.
        out_size: ``(h, w)`` of the fields.
        width: Half-width of a limb, in map cells.
        stride: Image pixels per map cell.
    """
    h, w = out_size
    L = len(skeleton)
    if keypoints.shape[0] == 0 or L == 0:
        return torch.zeros(2 * L, h, w)
    a_idx = torch.tensor([a for a, _ in skeleton])
    b_idx = torch.tensor([b for _, b in skeleton])
    cells = _cell_coords(keypoints.float(), stride)  # (P, K, 2)
    start, end = cells[:, a_idx], cells[:, b_idx]  # (P, L, 2)
    labelled = (keypoints[:, a_idx, 2] > 0) & (keypoints[:, b_idx, 2] > 0)  # (P, L)
    vec = end - start
    length = vec.norm(dim=-1).clamp_min(1e-6)  # (P, L)
    unit = vec / length[..., None]  # (P, L, 2)
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
    )
    rx = xs - start[..., 0, None, None]  # (P, L, h, w)
    ry = ys - start[..., 1, None, None]
    along = rx * unit[..., 0, None, None] + ry * unit[..., 1, None, None]
    across = (rx * unit[..., 1, None, None] - ry * unit[..., 0, None, None]).abs()
    on = (
        (along >= 0)
        & (along <= length[..., None, None])
        & (across <= width)
        & labelled[..., None, None]
    )
    count = on.sum(0).clamp_min(1)  # (L, h, w)
    field = (on[..., None] * unit[:, :, None, None]).sum(0) / count[..., None]  # (L, h, w, 2)
    return field.permute(0, 3, 1, 2).reshape(2 * L, h, w)  # (2L, h, w)


@dataclass(frozen=True)
class PoseCollate:
    """Batch pose samples and compute their targets:
    ``(images (B, 3, H, W), heatmaps (B, K + 1, h, w), pafs (B, 2 L, h, w), targets)``.

    Args:
        skeleton: Limbs for the PAFs.
        stride: Image pixels per map cell.
        sigma: Heatmap Gaussian spread, in cells.
        paf_width: Limb half-width, in cells.
    """

    skeleton: tuple[tuple[int, int], ...] = COCO_SKELETON
    stride: int = 4
    sigma: float = 1.0
    paf_width: float = 1.0

    def __call__(
        self, samples: list[PoseSample]
    ) -> tuple[Tensor, Tensor, Tensor, list[PoseTarget]]:
        images = torch.stack([x for x, _ in samples])  # (B, 3, H, W)
        out = (images.shape[-2] // self.stride, images.shape[-1] // self.stride)
        targets = [t for _, t in samples]
        heat = torch.stack(
            [heatmaps(t["keypoints"], out, self.sigma, stride=self.stride) for t in targets]
        )
        fields = torch.stack(
            [
                pafs(t["keypoints"], self.skeleton, out, self.paf_width, stride=self.stride)
                for t in targets
            ]
        )
        return images, heat, fields, targets


__all__ = [
    "CocoKeypoints",
    "PoseCollate",
    "SyntheticPoses",
    "heatmaps",
    "load_coco_keypoints",
    "pafs",
    "person_category",
    "render_scene",
    "to_sample",
    "write_pose_coco",
]
