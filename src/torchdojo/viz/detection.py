"""Pictures of detections: boxes drawn on images, predictions beside ground truth, PR curves.

Used by the ``object-detection`` recipe's report (and reusable by ``predict``). Taught in
lessons/19_object_detection.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image, ImageDraw
from torch import Tensor

# Tableau colours, one per class (cycled): distinct on photos and on pale microscopy.
PALETTE = (
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (255, 127, 14),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)


def _to_uint8(image: Tensor | np.ndarray) -> np.ndarray:
    """``(3, H, W)`` float in [0, 1] or ``(H, W, 3)`` uint8 -> ``(H, W, 3)`` uint8."""
    if isinstance(image, Tensor):
        array = image.detach().cpu()
        if array.dim() == 3 and array.shape[0] in (1, 3):
            array = array.permute(1, 2, 0)  # (H, W, C)
        if array.is_floating_point():
            array = (array.clamp(0, 1) * 255).round()
        out = array.to(torch.uint8).numpy()
    else:
        out = np.asarray(image)
        if out.dtype != np.uint8:
            out = (np.clip(out, 0, 1) * 255).round().astype(np.uint8)
    return np.repeat(out, 3, axis=2) if out.shape[2] == 1 else out


def draw_boxes(
    image: Tensor | np.ndarray,
    boxes: Tensor | np.ndarray,
    labels: Tensor | np.ndarray | Sequence[int],
    scores: Tensor | np.ndarray | Sequence[float] | None = None,
    classes: Sequence[str] = (),
    *,
    width: int = 2,
) -> np.ndarray:
    """A copy of ``image`` with each box outlined in its class colour and captioned.

    Args:
        image: ``(3, H, W)`` float in [0, 1] or ``(H, W, 3)`` uint8.
        boxes: ``(N, 4)`` xyxy pixels.
        labels: ``(N,)`` in 1..C (0 is background and never drawn).
        scores: ``(N,)`` shown after the name, or None (ground truth).
        classes: The C names; without them the label number is shown.
        width: Line width in pixels.

    Returns:
        ``(H, W, 3)`` uint8.
    """
    picture = Image.fromarray(_to_uint8(image))
    pen = ImageDraw.Draw(picture)
    box_list = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).tolist()
    label_list = [int(v) for v in np.asarray(labels).reshape(-1)]
    score_list = None if scores is None else [float(v) for v in np.asarray(scores).reshape(-1)]
    for i, (box, label) in enumerate(zip(box_list, label_list, strict=True)):
        colour = PALETTE[(label - 1) % len(PALETTE)]
        pen.rectangle(box, outline=colour, width=width)
        name = classes[label - 1] if 0 < label <= len(classes) else str(label)
        caption = name if score_list is None else f"{name} {score_list[i]:.2f}"
        x, y = box[0], max(0.0, box[1] - 11)
        pen.rectangle(pen.textbbox((x, y), caption), fill=colour)
        pen.text((x, y), caption, fill=(255, 255, 255))
    return np.asarray(picture)


def predictions_figure(
    images: Sequence[Tensor],
    predictions: Sequence[dict[str, Tensor]],
    targets: Sequence[dict[str, Tensor]],
    classes: Sequence[str],
    *,
    score_thresh: float = 0.3,
) -> Figure:
    """One row per image: the predictions (score >= ``score_thresh``) left, the ground truth
    right."""
    rows = len(images)
    fig = Figure(figsize=(8, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, 2, squeeze=False)
    for row, (image, pred, target) in enumerate(zip(images, predictions, targets, strict=True)):
        keep = pred["scores"] >= score_thresh
        drawn = draw_boxes(
            image, pred["boxes"][keep], pred["labels"][keep], pred["scores"][keep], classes
        )
        truth = draw_boxes(image, target["boxes"], target["labels"], None, classes)
        for ax, picture, title in (
            (axes[row, 0], drawn, f"predicted (score >= {score_thresh:g}): {int(keep.sum())}"),
            (axes[row, 1], truth, f"ground truth: {len(target['labels'])}"),
        ):
            ax.imshow(picture)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    return fig


def pr_curves_figure(precision: Tensor, classes: Sequence[str], *, iou_index: int = 0) -> Figure:
    """Precision against recall per class, from COCO evaluation's precision array.

    Args:
        precision: ``(T, R, K, A, M)`` (IoU thresholds, 101 recall points, classes, areas,
            max detections), -1 where undefined: torchmetrics' ``extended_summary`` output.
        classes: The K names, in the array's class order.
        iou_index: Which IoU threshold (0: IoU 0.5).
    """
    recall = np.linspace(0, 1, precision.shape[1])
    fig = Figure(figsize=(5.5, 4), layout="constrained")
    ax = fig.subplots()
    for k, name in enumerate(classes):
        curve = precision[iou_index, :, k, 0, -1].numpy()  # all areas, most detections
        defined = curve >= 0
        ap = float(curve[defined].mean()) if defined.any() else float("nan")
        ax.plot(recall[defined], curve[defined], label=f"{name} (AP {ap:.3f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.01))
    ax.set_title("precision-recall per class (IoU 0.5, COCO 101-point)", fontsize=10)
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    return fig
