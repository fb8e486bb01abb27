"""Predict with a finished detection, segmentation or pose run: images in, drawn copies and JSON
out.

``predict_dense(run_dir, path)`` rebuilds the run's model, runs it on every image at ``path``
through :class:`torchdojo.export.dense.DensePredictor` (the same pre- and post-processing as
the ONNX export and the server: resize whole, NMS with ``torchdojo.nn.boxes.postprocess``,
boxes mapped back to the original pixels) and writes into ``out_dir``:

- a copy of each image with its boxes (and class names, scores), its mask or its people's
  skeletons drawn on it, as PNG;
- segmentation: ``masks/<name>.png``, 8-bit grayscale, pixel value = class index;
- ``predictions.json``: per image its size, boxes ``[x1, y1, x2, y2]`` in original-image pixels
  with label names and scores, or the mask file and the pixel count of each class, or each
  person's keypoints ``[x, y, score]`` by name in original-image pixels; files that
  could not be read are listed under ``bad_files``, never fatal.

Used by ``torchdojo predict`` for runs whose ``model.json`` task is ``"detection"``,
``"segmentation"`` or ``"pose"``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from torchdojo.data.image_folder import BadFile, describe_error
from torchdojo.export.dense import (
    DETECTION,
    DISPLAY_SCORE_THRESH,
    POSE,
    DenseModelCard,
    DensePredictor,
    DenseResult,
    dense_card,
    mask_png,
    to_model_image,
)
from torchdojo.models import ModelSpec, load_bundle
from torchdojo.services.finished import require_finished
from torchdojo.services.predict import image_files
from torchdojo.utils import atomic_write_text
from torchdojo.viz.detection import PALETTE
from torchdojo.viz.detection import draw_boxes as draw_box_array
from torchdojo.viz.pose import draw_poses

PREDICTIONS_FILE = "predictions.json"
MASK_ALPHA = 0.45  # opacity of a class colour over the image


@dataclass
class DenseItem:
    """One image's prediction and the files written for it.

    Args:
        path: The input image.
        width: Its width in pixels.
        height: Its height in pixels.
        drawn: The drawn copy, relative to the output folder.
        detections: Detection: ``{"label", "index", "score", "box"}`` per kept box.
        mask: Segmentation: the mask PNG, relative to the output folder.
        pixel_counts: Segmentation: pixels of each class.
        people: Pose: ``{"score", "keypoints": {name: [x, y, score]}}`` per person; a keypoint
            not found is absent.
    """

    path: str
    width: int
    height: int
    drawn: str
    detections: list[dict[str, Any]] | None = None
    mask: str | None = None
    pixel_counts: dict[str, int] | None = None
    people: list[dict[str, Any]] | None = None


@dataclass
class DensePredictResult:
    """Every image's prediction, the unreadable files, and where the outputs went."""

    run_dir: str
    task: str
    classes: list[str]
    out_dir: str
    score_thresh: float | None
    items: list[DenseItem] = field(default_factory=list)
    bad_files: list[BadFile] = field(default_factory=list)


def card_of(spec: ModelSpec) -> DenseModelCard:
    """The eager card of a dense run: its task, classes, input size (``preprocess.resize``, else
    ``input_shape``) and the NMS settings it was evaluated with (``preprocess``)."""
    channels = spec.input_shape[0] if spec.input_shape else 3
    size = spec.preprocess.get("resize") or spec.input_shape[1:]
    if len(size) != 2:
        raise ValueError(
            f"model.json input_shape {spec.input_shape} is not an image (C, H, W); "
            "a dense run saves its input size there"
        )
    nms = {
        key: kind(spec.preprocess[key])
        for key, kind in (("score_thresh", float), ("iou_thresh", float), ("max_detections", int))
        if key in spec.preprocess
    }
    skeleton = [(int(a), int(b)) for a, b in spec.preprocess.get("skeleton", ())]
    intensity = str(spec.preprocess.get("intensity", "percentiles"))  # older runs: percentiles
    return dense_card(
        spec.task,
        spec.classes,
        (channels, int(size[0]), int(size[1])),
        skeleton=skeleton,
        intensity=intensity,
        **nms,
    )


@torch.inference_mode()
def predict_dense(
    run_dir: str | Path,
    path: str | Path,
    *,
    out_dir: str | Path | None = None,
    score_thresh: float = DISPLAY_SCORE_THRESH,
) -> DensePredictResult:
    """Draw and describe the boxes or masks of every image at ``path`` for a dense run.

    Args:
        run_dir: A finished detection or segmentation run folder.
        path: An image file or a folder searched recursively for images.
        out_dir: Folder for drawn images, masks and ``predictions.json``
            (default ``run_dir/predictions``).
        score_thresh: Detection: lowest score kept and drawn.

    Raises:
        FileNotFoundError: No trained model in ``run_dir``, or ``path`` does not exist.
        ValueError: The run is not a detection or segmentation run, or it did not finish.
    """
    run_dir, path = Path(run_dir), Path(path).expanduser()
    require_finished(run_dir, "predict")
    model, spec = load_bundle(run_dir)
    predictor = DensePredictor.from_module(model, card_of(spec))
    out = Path(out_dir) if out_dir is not None else run_dir / "predictions"
    detection = spec.task == DETECTION
    result = DensePredictResult(
        str(run_dir), spec.task, list(spec.classes), str(out), score_thresh if detection else None
    )
    for file in image_files(path):
        try:
            with Image.open(file) as opened:
                opened.load()  # decode now: a truncated file fails here
                image = opened.copy()
        except Exception as exc:  # any decode failure: report it, go on with the rest
            result.bad_files.append(BadFile(str(file), describe_error(exc, file)))
            continue
        (found,) = predictor.predict([image], score_thresh=score_thresh)
        name = file.relative_to(path).with_suffix("") if path.is_dir() else Path(file.stem)
        result.items.append(_write_item(file, image, found, predictor.card, out, name))
    atomic_write_text(out / PREDICTIONS_FILE, json.dumps(as_json(result), indent=2))
    return result


def _write_item(
    file: Path, image: Image.Image, found: DenseResult, card: DenseModelCard, out: Path, name: Path
) -> DenseItem:
    """Write the drawn copy (and the mask) of one image; its JSON entry."""
    picture = to_model_image(image, 3)  # 16-bit scaled, not clipped to white
    item = DenseItem(str(file), found.width, found.height, drawn=f"{name}.png")
    if found.mask is not None:
        item.mask = f"masks/{name}.png"
        item.pixel_counts = found.pixel_counts
        (out / item.mask).parent.mkdir(parents=True, exist_ok=True)
        (out / item.mask).write_bytes(mask_png(found.mask))
        picture = draw_mask(picture, found.mask)
    elif found.task == POSE:
        item.people = [
            {
                "score": p.score,
                "keypoints": {
                    n: k for n, k in zip(card.class_names, p.keypoints, strict=True) if k[2] > 0
                },
            }
            for p in found.people
        ]
        picture = draw_people(picture, found, card.skeleton)
    else:
        item.detections = [asdict(d) for d in found.detections]
        picture = draw_boxes(picture, found, card.class_names)
    (out / item.drawn).parent.mkdir(parents=True, exist_ok=True)
    picture.save(out / item.drawn)
    return item


def draw_boxes(image: Image.Image, found: DenseResult, classes: Sequence[str]) -> Image.Image:
    """A copy of ``image`` with each box outlined in its class colour, named and scored
    (:func:`torchdojo.viz.detection.draw_boxes`, lines thicker on large photos)."""
    drawn = draw_box_array(
        np.asarray(image.convert("RGB")),
        np.array([d.box for d in found.detections], dtype=np.float32).reshape(-1, 4),
        [d.index for d in found.detections],
        [d.score for d in found.detections],
        classes,
        width=max(2, round(min(image.size) / 200)),
    )
    return Image.fromarray(drawn)


def draw_people(
    image: Image.Image, found: DenseResult, skeleton: Sequence[tuple[int, int]]
) -> Image.Image:
    """A copy of ``image`` with each person's limbs and keypoints drawn
    (:func:`torchdojo.viz.pose.draw_poses`)."""
    keypoints = np.array([p.keypoints for p in found.people], dtype=np.float32)
    if not len(keypoints):
        return image.copy()
    thickness = max(1.5, min(image.size) / 150)  # visible on large photos
    drawn = draw_poses(
        np.asarray(image.convert("RGB")), keypoints, skeleton, scale=1, thickness=thickness
    )
    return Image.fromarray(drawn)


def draw_mask(image: Image.Image, mask: np.ndarray) -> Image.Image:
    """``image`` with each non-background class of ``mask`` tinted in its colour."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)  # (H, W, 3)
    colors = np.array(
        [PALETTE[(i - 1) % len(PALETTE)] for i in range(int(mask.max()) + 1)], np.float32
    )
    tint = colors[mask]  # (H, W, 3)
    alpha = np.where(mask[..., None] > 0, MASK_ALPHA, 0.0)  # background stays as it was
    blended = pixels * (1 - alpha) + tint * alpha
    return Image.fromarray(blended.round().astype(np.uint8))


def as_json(result: DensePredictResult) -> dict[str, Any]:
    """``result`` as the JSON document ``predictions.json`` holds."""
    items = [{k: v for k, v in asdict(item).items() if v is not None} for item in result.items]
    doc: dict[str, Any] = {
        "run_dir": result.run_dir,
        "task": result.task,
        "classes": result.classes,
        "boxes": "[x1, y1, x2, y2] in pixels of the original image"
        if result.task == DETECTION
        else None,
        "masks": None if result.task == DETECTION else "8-bit PNG, pixel value = class index",
        "score_thresh": result.score_thresh,
        "predictions": items,
        "bad_files": [asdict(b) for b in result.bad_files],
    }
    return {k: v for k, v in doc.items() if v is not None}
