"""What every semantic-segmentation recipe shares: loss, steps, pixel and object metrics, report.

A segmentation recipe (``nuclei-segmentation``, ``scene-segmentation``) loads
:class:`~torchdojo.data.segmentation.SegmentationData` splits, builds
:func:`segmentation_loaders` (random crops to train, whole images to validate), trains with
``ctx.fit(task, metrics=pixel_metrics(K), step=segmentation_step,
eval_step=segmentation_eval_step)``, and ends with :func:`finish_segmentation`: the model saved
for ``predict``/``export``, test-set pixel metrics (per-class IoU, mean IoU, foreground Dice,
all torchmetrics), and for nuclei the field's object metric.

The object metric (Caicedo et al. 2019, https://doi.org/10.1002/cyto.a.23863, the protocol of
BBBC039): nuclei are the connected components of the *nucleus* class (4-connected), grown back
into the boundary pixels around them (each boundary pixel joins the nearest component within
:data:`GROW` pixels); components under ``min_size`` pixels are dropped. Ground-truth nuclei come
from the ground-truth mask the same way. Predicted and true nuclei are matched one-to-one at
IoU > 0.5 (Hungarian assignment on IoU); F1 = 2TP / (2TP + FP + FN) over all test images.
As in the paper's code, a *merge* is a predicted nucleus that overlaps two or more true ones
at IoU > 0.1, a *split* a true nucleus overlapped so by two or more predicted ones.
Lesson: lessons/20_segmentation.py.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics import Metric
from torchmetrics.classification import BinaryF1Score, MulticlassJaccardIndex
from torchmetrics.wrappers import LambdaInputTransformer

from torchdojo.data.segmentation import IGNORE, RandomCrops, SegmentationData
from torchdojo.engine import EvalOutput, History, Loaders, StepOutput, Trainer, make_loader
from torchdojo.runs.context import RunContext
from torchdojo.runs.contract import Setup

GROW = 3  # pixels a nucleus grows back into the boundary class (its boundary is 1-2 px wide)
AUX_WEIGHT = 0.4  # PSPNet's auxiliary loss weight (Zhao et al. 2017, section 3.4)
MATCH_IOU = 0.5
SPLIT_MERGE_IOU = 0.1  # Caicedo et al.'s evaluation code counts overlaps above this


# ----------------------------------------------------------------------------- the loss
class DiceCELoss(nn.Module):
    """Cross-entropy (optionally class-weighted) plus ``dice_weight`` x soft Dice loss.

    The soft Dice loss is 1 - mean over classes of 2 |P ∩ G| / (|P| + |G|) on softmax
    probabilities; pixels marked 255 count in neither term. Cross-entropy alone lets the thin
    boundary class (5 % of BBBC039's pixels) lose to the background; a weight on it and the
    Dice term (which weighs every class equally) both push it back.

    Args:
        class_weights: One weight per class for the cross-entropy (None: all 1).
        dice_weight: Weight of the Dice term (0: cross-entropy only).
    """

    class_weights: Tensor | None

    def __init__(self, class_weights: list[float] | None = None, dice_weight: float = 1.0) -> None:
        super().__init__()
        weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("class_weights", weights)
        self.dice_weight = dice_weight

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        ce = F.cross_entropy(logits, target, weight=self.class_weights, ignore_index=IGNORE)
        return ce + self.dice_weight * soft_dice_loss(logits, target)


def soft_dice_loss(logits: Tensor, target: Tensor, eps: float = 1.0) -> Tensor:
    """1 - the mean over classes of the soft Dice of ``softmax(logits)`` ``(B, K, H, W)`` and
    ``target`` ``(B, H, W)``; 255 pixels are left out."""
    K = logits.shape[1]
    valid = (target != IGNORE).unsqueeze(1)  # (B, 1, H, W)
    probs = logits.float().softmax(1) * valid  # (B, K, H, W)
    onehot = F.one_hot(target.clamp(max=K - 1), K).permute(0, 3, 1, 2) * valid  # (B, K, H, W)
    inter = (probs * onehot).sum((0, 2, 3))  # (K,)
    total = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))  # (K,)
    return 1 - ((2 * inter + eps) / (total + eps)).mean()


# ---------------------------------------------------------------------- loaders and steps
def segmentation_loaders(
    train: SegmentationData,
    val: SegmentationData,
    *,
    crop: int,
    repeats: int,
    batch_size: int,
    seed: int,
) -> Loaders:
    """Random ``crop`` x ``crop`` crops (flips, 90-degree turns) of the training images,
    ``repeats`` per image per epoch; whole validation images one at a time (sizes may differ)."""
    crops = RandomCrops(train, size=crop, repeats=repeats)
    return Loaders(
        make_loader(crops, batch_size=batch_size, seed=seed, drop_last=len(crops) > batch_size),
        make_loader(val, batch_size=1, shuffle=False, seed=seed),
    )


def segmentation_step(trainer: Trainer, batch: tuple[Tensor, Tensor]) -> StepOutput:
    """One optimizer step; a model with ``forward_aux`` (PSPNet) adds its auxiliary loss
    weighted by :data:`AUX_WEIGHT`."""
    assert trainer.loss_fn is not None
    images, masks = batch  # (B, C, H, W), (B, H, W)
    forward_aux = getattr(trainer.unwrapped_model, "forward_aux", None)
    with trainer.autocast():
        if forward_aux is not None:
            logits, aux = forward_aux(images)  # both (B, K, H, W)
            loss = trainer.loss_fn(logits.float(), masks)
            loss = loss + AUX_WEIGHT * trainer.loss_fn(aux.float(), masks)
        else:
            loss = trainer.loss_fn(trainer.model(images).float(), masks)
    trainer.backward(loss)
    trainer.step_optimizer()
    return StepOutput(loss=loss.detach(), batch_size=len(masks))


def segmentation_eval_step(trainer: Trainer, batch: tuple[Tensor, Tensor]) -> EvalOutput:
    """Loss and predicted class map ``(B, H, W)`` of whole images."""
    images, masks = batch
    logits = trainer.model(images).float()  # (B, K, H, W)
    loss = trainer.loss_fn(logits, masks) if trainer.loss_fn is not None else None
    return EvalOutput(loss=loss, preds=logits.argmax(1), target=masks, batch_size=len(masks))


def foreground_dice() -> Metric:
    """Dice of foreground (every class but 0) vs background over all pixels: a binary F1 on
    pixels, from torchmetrics (255 ignored)."""
    return LambdaInputTransformer(
        BinaryF1Score(ignore_index=IGNORE),
        transform_pred=lambda p: (p > 0).long(),
        transform_target=lambda t: torch.where(t == IGNORE, t, (t > 0).long()),
    )


def pixel_metrics(num_classes: int) -> dict[str, Metric]:
    """Mean IoU over classes and foreground Dice, for the trainer's validation."""
    return {
        "miou": MulticlassJaccardIndex(num_classes, ignore_index=IGNORE),
        "dice": foreground_dice(),
    }


@torch.inference_mode()
def predict_masks(model: nn.Module, data: SegmentationData) -> list[Tensor]:
    """The predicted class map ``(H, W)`` of every image of ``data``, one image at a time."""
    model.eval()
    device = next(model.parameters()).device
    return [model(image[None].to(device))[0].argmax(0).cpu() for image in data.images]


def pixel_scores(
    preds: list[Tensor], targets: list[Tensor], classes: list[str]
) -> dict[str, float]:
    """``iou_<class>`` for every class, ``miou`` and foreground ``dice`` over all pixels."""
    per_class = MulticlassJaccardIndex(len(classes), average="none", ignore_index=IGNORE)
    dice = foreground_dice()
    for pred, target in zip(preds, targets, strict=True):
        per_class.update(pred[None], target[None])
        dice.update(pred[None], target[None])
    ious = per_class.compute()
    out = {f"iou_{name}": float(v) for name, v in zip(classes, ious, strict=True)}
    out["miou"] = float(ious.mean())
    out["dice"] = float(dice.compute())
    return out


# --------------------------------------------------------------------- the object metric
def nuclei_instances(
    mask: np.ndarray, *, nucleus: int = 1, boundary: int = 2, min_size: int = 10
) -> np.ndarray:
    """Instance labels ``(H, W)`` (0 background, 1..N nuclei) of a 3-class mask.

    The nucleus class's 4-connected components, each grown into the boundary pixels within
    :data:`GROW` pixels (every boundary pixel joins its nearest component); components under
    ``min_size`` pixels (before growing) are dropped, then labels renumbered 1..N. (Counting
    the leftover boundary-only components as nuclei too was measured worse: on the U-Net's
    BBBC039 test predictions F1 fell from 0.785 to 0.744, the rims' fragments merging.)
    """
    labels, _ = ndimage.label(mask == nucleus)  # (H, W), 4-connected by default
    sizes = np.bincount(labels.ravel())
    labels[sizes[labels] < min_size] = 0
    if labels.any():
        # Nearest labelled pixel of every pixel: its distance and its coordinates.
        dist, (iy, ix) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
        grow = (mask == boundary) & (labels == 0) & (dist <= GROW)
        labels[grow] = labels[iy[grow], ix[grow]]
    _, renumbered = np.unique(labels, return_inverse=True)
    return renumbered.reshape(labels.shape)


def iou_matrix(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU of every true instance (rows) with every predicted one (columns), labels 1..N."""
    n_true, n_pred = int(true.max()), int(pred.max())
    pair = np.bincount(
        true.ravel().astype(np.int64) * (n_pred + 1) + pred.ravel(),
        minlength=(n_true + 1) * (n_pred + 1),
    ).reshape(n_true + 1, n_pred + 1)
    inter = pair[1:, 1:].astype(np.float64)  # (N_true, N_pred)
    area_true, area_pred = pair[1:, :].sum(1), pair[:, 1:].sum(0)
    union = area_true[:, None] + area_pred[None, :] - inter
    return inter / np.maximum(union, 1)


@dataclass
class ObjectCounts:
    """Object-level counts over one or more images."""

    true: int = 0
    pred: int = 0
    tp: int = 0
    splits: int = 0
    merges: int = 0

    def __add__(self, other: ObjectCounts) -> ObjectCounts:
        return ObjectCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def f1(self) -> float:
        """2TP / (2TP + FP + FN), with FP = pred - TP and FN = true - TP."""
        denom = self.true + self.pred  # = 2TP + FP + FN
        return 2 * self.tp / denom if denom else 1.0


def match_objects(true: np.ndarray, pred: np.ndarray) -> ObjectCounts:
    """One-to-one matches at IoU > 0.5 (Hungarian on IoU), splits and merges (IoU > 0.1)."""
    iou = iou_matrix(true, pred)
    counts = ObjectCounts(true=iou.shape[0], pred=iou.shape[1])
    if iou.size:
        rows, cols = linear_sum_assignment(-iou)
        counts.tp = int((iou[rows, cols] > MATCH_IOU).sum())
        overlaps = iou > SPLIT_MERGE_IOU
        counts.merges = int((overlaps.sum(0) > 1).sum())  # a prediction over 2+ true nuclei
        counts.splits = int((overlaps.sum(1) > 1).sum())  # a true nucleus cut into 2+
    return counts


def object_scores(preds: list[Tensor], targets: list[Tensor], *, min_size: int) -> ObjectCounts:
    """:class:`ObjectCounts` summed over images (class maps with BBBC039's 3 classes)."""
    total = ObjectCounts()
    for pred, target in zip(preds, targets, strict=True):
        true_objects = nuclei_instances(target.numpy(), min_size=min_size)
        pred_objects = nuclei_instances(pred.numpy(), min_size=min_size)
        total = total + match_objects(true_objects, pred_objects)
    return total


# ----------------------------------------------------------------------------- the finish
def finish_segmentation(
    ctx: RunContext,
    task: Setup,
    history: History,
    test: SegmentationData,
    *,
    objects: bool,
    min_size: int = 10,
) -> dict[str, float]:
    """Save the model, score ``test`` (pixel metrics; nuclei objects when ``objects``), draw
    overlays and the per-class IoU table; returns the run's metrics (``test_*``)."""
    model = getattr(task.model, "module", task.model)
    assert task.spec is not None
    ctx.save_model(model, task.spec)
    preds = predict_masks(model, test)
    scores = pixel_scores(preds, test.masks, test.classes)
    metrics = {f"test_{k}": v for k, v in scores.items()}
    last = history.last()
    metrics.update(train_loss=last["train_loss"], train_time=last["train_time"])
    if objects:
        counts = object_scores(preds, test.masks, min_size=min_size)
        metrics.update(
            test_object_f1=counts.f1,
            test_splits=float(counts.splits),
            test_merges=float(counts.merges),
            test_true_objects=float(counts.true),
            test_pred_objects=float(counts.pred),
        )
    ctx.add_section("Per-class IoU on the test images", iou_table(scores, test.classes))
    ctx.save_figure(overlay_figure(test, preds, objects=objects), "test_overlays")
    return metrics


def iou_table(scores: dict[str, float], classes: list[str]) -> str:
    """An HTML table of per-class IoU (escaped)."""
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{scores[f'iou_{name}']:.4f}</td></tr>"
        for name in classes
    )
    mean = f"<tr><td><b>mean</b></td><td><b>{scores['miou']:.4f}</b></td></tr>"
    return f"<table><tr><th>class</th><th>IoU</th></tr>{rows}{mean}</table>"


def overlay_figure(
    data: SegmentationData, preds: list[Tensor], *, objects: bool, n: int = 4
) -> Figure:
    """Up to ``n`` test images: the image, the ground truth and the prediction drawn over it
    (nuclei: each object its own colour; scenes: each class its own colour)."""
    picks = list(range(min(n, len(data))))
    fig = Figure(figsize=(3.2 * 3, 2.6 * len(picks)), layout="constrained")
    axes = fig.subplots(len(picks), 3, squeeze=False)
    for row, i in zip(axes, picks, strict=True):
        image = data.images[i].permute(1, 2, 0).numpy()
        shown = image[..., 0] if image.shape[-1] == 1 else image
        for ax, (title, mask) in zip(
            row,
            (("image", None), ("ground truth", data.masks[i]), ("prediction", preds[i])),
            strict=True,
        ):
            ax.imshow(shown, cmap="gray")
            if mask is not None:
                ax.imshow(_colour(mask.numpy(), objects), alpha=0.45, interpolation="nearest")
            ax.set_title(f"{data.names[i][:24]} {title}", fontsize=8)
            ax.set_axis_off()
    return fig


def _colour(mask: np.ndarray, objects: bool) -> np.ndarray:
    """RGBA picture of a class map (or of its nuclei, one random colour each)."""
    labels = nuclei_instances(mask) if objects else np.where(mask == IGNORE, 0, mask)
    palette = np.random.default_rng(0).uniform(0.2, 1.0, (int(labels.max()) + 1, 4))
    palette[:, 3] = 1.0
    palette[0] = 0.0  # background transparent
    return palette[labels]


def spec_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The builder kwargs to save: ``pretrained`` off (the weights come from the bundle)."""
    return {**kwargs, "pretrained": False} if "pretrained" in kwargs else dict(kwargs)


__all__ = [
    "DiceCELoss",
    "ObjectCounts",
    "finish_segmentation",
    "iou_matrix",
    "match_objects",
    "nuclei_instances",
    "object_scores",
    "pixel_metrics",
    "pixel_scores",
    "predict_masks",
    "segmentation_eval_step",
    "segmentation_loaders",
    "segmentation_step",
    "soft_dice_loss",
]
