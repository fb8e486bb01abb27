"""Run a detector, a segmenter or a pose network, eager or exported to ONNX: an image in, boxes,
a mask or people out.

Dense models follow the shared contract: they take images scaled to [0, 1] (a model that
wants ImageNet statistics normalizes inside), a detector returns decoded ``boxes (B, A, 4)`` xyxy in input pixels and per-class
``scores (B, A, C)`` before NMS, a segmenter returns ``logits (B, K, H, W)``, a pose network
its last stage's ``(heatmaps (B, K + 1, h, w), pafs (B, 2L, h, w))``. The predictors here do
the same thing around any of them: resize the image to the card's input size (torchvision's
antialiased bilinear resize, as the recipes' transforms do), run the model, then post-process
in Python: NMS with :func:`torchdojo.nn.boxes.postprocess` for a detector (the same function
after eager and ONNX outputs: NMS is never inside the graph), a bilinear upsampling of the
logits to the original size followed by arg-max for a segmenter, and
:func:`torchdojo.nn.pose.decode_poses` for a pose network. Boxes and keypoints are mapped back
to the original image's pixels.

``DenseModelCard`` is the ``card.json`` of a dense export (``"task"``: ``"detection"``,
``"segmentation"`` or ``"pose"``). Used by ``torchdojo predict`` (eager,
:meth:`DensePredictor.from_module`), ``torchdojo serve`` (ONNX,
:meth:`DensePredictor.from_export`) and the export's parity check.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor, nn
from torch.nn import functional as F

from torchdojo.export.card import CARD_FILE
from torchdojo.utils.intensity import SCALINGS, scale_intensity, to_uint8

DETECTION = "detection"
SEGMENTATION = "segmentation"
POSE = "pose"
DENSE_TASKS = (DETECTION, SEGMENTATION, POSE)

SCORE_THRESH = 0.05  # the contract's NMS defaults (torchdojo.nn.boxes.postprocess)
IOU_THRESH = 0.5
MAX_DETECTIONS = 100
DISPLAY_SCORE_THRESH = 0.3  # predict and serve show boxes at least this sure (mAP keeps 0.05)

DETECTION_OUTPUTS = ("boxes", "scores")
SEGMENTATION_OUTPUTS = ("logits",)
POSE_OUTPUTS = ("heatmaps", "pafs")
PREPROCESSING = (
    "Python, not the graph: the image becomes RGB (or grayscale for 1 channel; a 16-bit or "
    "float image given to a 1-channel model is scaled to [0, 1] by the card's intensity "
    "scaling, other 16-bit images are scaled to 8 bits), is resized whole to "
    "input_size (torchvision's bilinear antialiased resize; the aspect ratio is not kept) and "
    "scaled to [0, 1]; no mean/std: the model normalizes inside if it needs to"
)
DETECTION_POSTPROCESSING = (
    "Python, not the graph: the graph returns decoded boxes (B, A, 4) xyxy in input pixels and "
    "per-class probabilities scores (B, A, C) before NMS; torchdojo.nn.boxes.postprocess "
    "(torchvision batched_nms per class, score_thresh, iou_thresh, max_detections) keeps the "
    "detections, labels 1..C name class_names[label - 1], and boxes are scaled back to the "
    "original image's pixels"
)
POSE_POSTPROCESSING = (
    "Python, not the graph: the graph returns the last stage's heatmaps (B, K + 1, h, w) and "
    "part affinity fields (B, 2L, h, w); torchdojo.nn.pose.decode_poses (peaks, PAF line "
    "integrals, greedy limb association) finds the people, and their keypoints are scaled "
    "back to the original image's pixels; keypoint k is class_names[k], limbs are skeleton"
)
SEGMENTATION_POSTPROCESSING = (
    "Python, not the graph: the graph returns logits (B, K, H, W); they are upsampled "
    "(bilinear) to the original image size and the arg-max over K is the class of each pixel "
    "(class_names[index])"
)

# ---------------------------------------------------------------------------------------------
# The card


@dataclass(frozen=True)
class DenseModelCard:
    """``card.json`` of an exported detector or segmenter: how to feed it, how to read it.

    Args:
        task: ``"detection"`` or ``"segmentation"``.
        class_names: Detection: the C object classes (label ``i`` in 1..C is
            ``class_names[i - 1]``; 0 is the background). Segmentation: the K classes of the
            logits, background included. Pose: the K keypoint names.
        input_size: ``(C, H, W)`` the image is resized to.
        model_file: File name of the model inside the export folder.
        format: ``"onnx"``.
        exporter: Which exporter wrote the file (``"dynamo"`` or ``"torchscript"``).
        opset: ONNX opset of the graph.
        input_name: Name of the graph input, ``(B, C, H, W)`` float32 in [0, 1].
        output_names: ``("boxes", "scores")`` or ``("logits",)``.
        score_thresh: Detection: lowest score kept.
        iou_thresh: Detection: IoU above which NMS drops the lower-scored box of a class.
        max_detections: Detection: most boxes kept per image.
        skeleton: Pose: ``(a, b)`` keypoint indices of each limb, in PAF order.
        intensity: How a 16-bit or float image given to a one-channel model becomes [0, 1]:
            ``"percentiles"`` (1st/99.8th per image) or ``"log"`` (BBBC039's fixed log scale),
            as the model was trained (:mod:`torchdojo.utils.intensity`).
        preprocessing: Where and how an image becomes the input.
        postprocessing: Where and how outputs become boxes or a mask.
        metrics: Measured metrics of the model.
        versions: Versions of torch, onnx and onnxruntime at export time.
        created: ISO-8601 UTC time of the export.
    """

    task: str
    class_names: tuple[str, ...]
    input_size: tuple[int, int, int]
    model_file: str = "model.onnx"
    format: str = "onnx"
    exporter: str = "eager"
    opset: int | None = None
    input_name: str = "images"
    output_names: tuple[str, ...] = DETECTION_OUTPUTS
    score_thresh: float = SCORE_THRESH
    iou_thresh: float = IOU_THRESH
    max_detections: int = MAX_DETECTIONS
    skeleton: tuple[tuple[int, int], ...] = ()
    intensity: str = "percentiles"
    preprocessing: str = PREPROCESSING
    postprocessing: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""

    @property
    def num_classes(self) -> int:
        """Number of classes in ``class_names``."""
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        """The card as plain JSON-ready values."""
        return asdict(self)


def dense_card(
    task: str, class_names: Sequence[str], input_size: Sequence[int], **fields: Any
) -> DenseModelCard:
    """A card for ``task`` with the outputs and post-processing text that task implies.

    Raises:
        ValueError: An unknown task, no classes, or an input size that is not ``(C, H, W)``.
    """
    if task not in DENSE_TASKS:
        raise ValueError(f"task must be one of {DENSE_TASKS}, got {task!r}")
    if not class_names:
        raise ValueError("class_names is empty; pass the name of each class")
    if len(input_size) != 3 or input_size[0] not in (1, 3):  # (C, H, W)
        raise ValueError(f"input_size must be (C, H, W) with 1 or 3 channels, got {input_size}")
    if fields.get("intensity", "percentiles") not in SCALINGS:
        raise ValueError(f"intensity {fields['intensity']!r}: use one of {', '.join(SCALINGS)}")
    outputs = {DETECTION: DETECTION_OUTPUTS, SEGMENTATION: SEGMENTATION_OUTPUTS}
    texts = {DETECTION: DETECTION_POSTPROCESSING, SEGMENTATION: SEGMENTATION_POSTPROCESSING}
    defaults: dict[str, Any] = {
        "output_names": outputs.get(task, POSE_OUTPUTS),
        "postprocessing": texts.get(task, POSE_POSTPROCESSING),
    }
    if "skeleton" in fields:
        fields["skeleton"] = tuple((int(a), int(b)) for a, b in fields["skeleton"])
    c, h, w = (int(v) for v in input_size)
    return DenseModelCard(
        task=task,
        class_names=tuple(str(n) for n in class_names),
        input_size=(c, h, w),
        **(defaults | fields),
    )


def load_dense_card(export_dir: str | Path) -> DenseModelCard:
    """Read the ``card.json`` of a detection or segmentation export.

    Raises:
        ValueError: No card, or a card of another task.
    """
    path = Path(export_dir) / CARD_FILE
    if not path.is_file():
        raise ValueError(
            f"no {CARD_FILE} in {export_dir}; export a run there: torchdojo export RUN"
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("task") not in DENSE_TASKS:
        raise ValueError(f"{path} is not a {'/'.join(DENSE_TASKS)} card; load it with load_card")
    known = DenseModelCard.__dataclass_fields__.keys()
    values = {k: v for k, v in data.items() if k in known}
    for key in ("class_names", "output_names", "input_size"):
        if key in values:
            values[key] = tuple(values[key])
    return dense_card(
        values.pop("task"), values.pop("class_names"), values.pop("input_size"), **values
    )


# ---------------------------------------------------------------------------------------------
# Pre- and post-processing


def is_high_depth(image: Image.Image) -> bool:
    """16-bit integer or float pixels (microscopy, scientific PNG/TIFF)."""
    return image.mode.startswith("I") or image.mode == "F"


def to_model_image(image: Image.Image, channels: int) -> Image.Image:
    """An upright 8-bit RGB (``channels == 3``) or grayscale image for drawing or a model.

    Transparency is composited onto white; 16-bit and float pixels are scaled to 8 bits as
    the recipes' transforms do (:func:`torchdojo.utils.intensity.to_uint8`), not clipped.
    """
    image = ImageOps.exif_transpose(image) or image
    if is_high_depth(image):
        image = Image.fromarray(to_uint8(np.asarray(image), image.mode), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return image.convert("L" if channels == 1 else "RGB")


def scale_high_depth(image: Image.Image, intensity: str = "percentiles") -> np.ndarray:
    """A high-depth grayscale image as float32 ``(H, W)`` in [0, 1], by the named scaling
    (``"percentiles"``: 1st/99.8th per image; ``"log"``: BBBC039's fixed log scale), as the
    segmentation recipes read microscopy."""
    raw = np.asarray(image, dtype=np.float32)
    return scale_intensity(raw[..., 0] if raw.ndim == 3 else raw, intensity)


def prepare(
    images: Sequence[Image.Image], input_size: Sequence[int], intensity: str = "percentiles"
) -> Tensor:
    """Resize each image whole to ``input_size`` and scale to [0, 1]: ``(B, C, H, W)``.

    8-bit images are resized as uint8, exactly as torchvision's ``Resize(antialias=True)``
    does in the recipes' transforms. A one-channel model given a 16-bit or float image gets
    it scaled by ``intensity`` (:func:`scale_high_depth`: the scaling the model trained on);
    other high-depth images are scaled to 8 bits first (:func:`to_model_image`).
    """
    c, h, w = input_size
    batch = []
    for image in images:
        image = ImageOps.exif_transpose(image) or image
        if c == 1 and is_high_depth(image):
            chw = torch.from_numpy(scale_high_depth(image, intensity))[None, None]  # (1,1,H0,W0)
        else:
            upright = to_model_image(image, c)
            pixels = np.asarray(upright).reshape(upright.height, upright.width, c)
            chw = torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None]  # (1, C, H0, W0) uint8
        if tuple(chw.shape[-2:]) != (h, w):
            # what torchvision's Resize(antialias=True) runs, without importing torchvision
            chw = F.interpolate(chw, size=(h, w), mode="bilinear", antialias=True)
        scale = 255.0 if chw.dtype == torch.uint8 else 1.0
        batch.append(chw[0].float() / scale)  # (C, H, W)
    return torch.stack(batch)  # (B, C, H, W)


@dataclass(frozen=True)
class Detection:
    """One kept box, in the original image's pixels.

    Args:
        label: Class name.
        index: Class label in 1..C (0 is the background).
        score: The class probability.
        box: ``[x1, y1, x2, y2]`` in pixels of the original image.
    """

    label: str
    index: int
    score: float
    box: list[float]


@dataclass(frozen=True)
class Person:
    """One person found by a pose model, in the original image's pixels.

    Args:
        score: The association's score (mean keypoint and limb score).
        keypoints: ``[x, y, score]`` of each keypoint in the card's order; score 0 = not found.
    """

    score: float
    keypoints: list[list[float]]


@dataclass
class DenseResult:
    """What a dense model found in one image.

    Args:
        task: ``"detection"`` or ``"segmentation"``.
        width: Width of the original image.
        height: Height of the original image.
        detections: Detection: the kept boxes, best first.
        mask: Segmentation: ``(height, width)`` uint8 class index of each pixel.
        pixel_counts: Segmentation: pixels of each class name.
        people: Pose: the people found, best first.
    """

    task: str
    width: int
    height: int
    detections: list[Detection] = field(default_factory=list)
    mask: np.ndarray | None = None
    pixel_counts: dict[str, int] = field(default_factory=dict)
    people: list[Person] = field(default_factory=list)


def detections_of(
    boxes: Tensor,
    scores: Tensor,
    sizes: Sequence[tuple[int, int]],
    card: DenseModelCard,
    *,
    score_thresh: float | None = None,
) -> list[DenseResult]:
    """NMS on decoded outputs, then boxes scaled to each original ``(width, height)`` and
    clipped to the image.

    Args:
        boxes: ``(B, A, 4)`` xyxy in input pixels.
        scores: ``(B, A, C)`` per-class probabilities.
        sizes: ``(width, height)`` of each original image.
        card: Gives the thresholds, the input size and the class names.
        score_thresh: Lowest score kept; the card's when None.
    """
    from torchdojo.nn.boxes import postprocess

    kept = postprocess(
        boxes.float(),
        scores.float(),
        score_thresh=card.score_thresh if score_thresh is None else score_thresh,
        iou_thresh=card.iou_thresh,
        max_detections=card.max_detections,
    )
    _, h, w = card.input_size
    results = []
    for found, (width, height) in zip(kept, sizes, strict=True):
        scale = torch.tensor([width / w, height / h, width / w, height / h])
        bounds = torch.tensor([width, height, width, height], dtype=torch.float32)
        scaled = (found["boxes"].float() * scale).clamp(min=torch.zeros(4), max=bounds).tolist()
        detections = [
            Detection(
                label=card.class_names[int(label) - 1],
                index=int(label),
                score=round(float(score), 6),
                box=[round(v, 2) for v in box],
            )
            for box, score, label in zip(scaled, found["scores"], found["labels"], strict=True)
        ]
        results.append(DenseResult(DETECTION, width, height, detections=detections))
    return results


def masks_of(
    logits: Tensor, sizes: Sequence[tuple[int, int]], card: DenseModelCard
) -> list[DenseResult]:
    """Upsample each image's logits to its original ``(width, height)``; arg-max per pixel."""
    results = []
    for one, (width, height) in zip(logits.float(), sizes, strict=True):
        up = F.interpolate(one[None], size=(height, width), mode="bilinear", align_corners=False)
        mask = up[0].argmax(dim=0).to(torch.uint8).numpy()  # (height, width)
        counts = np.bincount(mask.ravel(), minlength=card.num_classes)
        pixel_counts = {name: int(counts[i]) for i, name in enumerate(card.class_names)}
        results.append(
            DenseResult(SEGMENTATION, width, height, mask=mask, pixel_counts=pixel_counts)
        )
    return results


def poses_of(
    heatmaps: Tensor, pafs: Tensor, sizes: Sequence[tuple[int, int]], card: DenseModelCard
) -> list[DenseResult]:
    """People of each image (:func:`torchdojo.nn.pose.decode_poses`), keypoints scaled to
    each original ``(width, height)``."""
    from torchdojo.nn.pose import decode_poses

    _, h, w = card.input_size
    results = []
    for heat, fields, (width, height) in zip(heatmaps.float(), pafs.float(), sizes, strict=True):
        keypoints, scores = decode_poses(heat, fields, card.skeleton, image_size=(h, w))
        scaled = keypoints.float() * torch.tensor([width / w, height / h, 1.0])  # (P, K, 3)
        scaled[..., :2] *= (keypoints[..., 2:] > 0).float()  # missing keypoints stay at 0, 0
        people = [
            Person(round(float(score), 6), [[round(float(v), 2) for v in kp] for kp in person])
            for person, score in zip(scaled, scores, strict=True)
        ]
        people.sort(key=lambda person: -person.score)
        results.append(DenseResult(POSE, width, height, people=people))
    return results


def mask_png(mask: np.ndarray) -> bytes:
    """A class-index mask as an 8-bit grayscale PNG (pixel value = class index)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8), mode="L").save(buffer, "PNG")
    return buffer.getvalue()


def mask_png_base64(mask: np.ndarray) -> str:
    """:func:`mask_png` as base64 text, for JSON."""
    return base64.b64encode(mask_png(mask)).decode("ascii")


# ---------------------------------------------------------------------------------------------
# The predictor

Runner = Callable[[Tensor], tuple[Tensor, ...]]


class DensePredictor:
    """Boxes or masks for images, with an eager module or an ONNX export behind one interface.

    Build it with :meth:`from_module` (a PyTorch model and its card) or :meth:`from_export`
    (the ``model.onnx`` of an export folder, run by ONNX Runtime).

    Args:
        card: What the model takes and returns.
        run: Maps ``(B, C, H, W)`` inputs in [0, 1] to the raw outputs the card names.
    """

    def __init__(self, card: DenseModelCard, run: Runner) -> None:
        self.card = card
        self.run = run

    @classmethod
    def from_module(cls, model: nn.Module, card: DenseModelCard) -> DensePredictor:
        """Predict with an eager ``model`` (put in eval mode)."""
        model = model.eval()

        def run(x: Tensor) -> tuple[Tensor, ...]:
            with torch.inference_mode():
                out = model(x)
            return tuple(out) if isinstance(out, tuple | list) else (out,)

        return cls(card, run)

    @classmethod
    def from_export(cls, export_dir: str | Path, *, threads: int | None = None) -> DensePredictor:
        """Predict with the ``model.onnx`` of a dense export folder (ONNX Runtime, CPU)."""
        import onnxruntime as ort

        from torchdojo.export.predictor import session_options

        card = load_dense_card(export_dir)
        options = session_options(threads=threads, allow_spinning=False)
        path = str(Path(export_dir) / card.model_file)
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

        def run(x: Tensor) -> tuple[Tensor, ...]:
            feed = {card.input_name: np.ascontiguousarray(x.numpy(), dtype=np.float32)}
            outputs = session.run(list(card.output_names), feed)
            return tuple(torch.from_numpy(np.asarray(o, dtype=np.float32)) for o in outputs)

        return cls(card, run)

    def outputs(self, x: Tensor) -> tuple[Tensor, ...]:
        """Raw outputs for prepared inputs ``(B, C, H, W)``: ``(boxes, scores)``, ``(logits,)``
        or ``(heatmaps, pafs)``."""
        if x.ndim != 4 or tuple(x.shape[1:]) != self.card.input_size:
            raise ValueError(
                f"expected inputs of shape (B, {', '.join(map(str, self.card.input_size))}), "
                f"got {tuple(x.shape)}; prepare images with torchdojo.export.dense.prepare"
            )
        return self.run(x.float())

    def predict(
        self, images: Sequence[Image.Image], *, score_thresh: float | None = None
    ) -> list[DenseResult]:
        """Boxes (original pixels) or a full-size mask for each image.

        Args:
            images: Pillow images of any size and mode.
            score_thresh: Detection: lowest score kept; the card's when None.
        """
        if not images:
            return []
        images = [ImageOps.exif_transpose(image) or image for image in images]  # upright
        sizes = [image.size for image in images]  # (width, height)
        out = self.outputs(prepare(images, self.card.input_size, self.card.intensity))
        if self.card.task == DETECTION:
            return detections_of(out[0], out[1], sizes, self.card, score_thresh=score_thresh)
        if self.card.task == POSE:
            return poses_of(out[0], out[1], sizes, self.card)
        return masks_of(out[0], sizes, self.card)
